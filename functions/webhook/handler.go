package main

import (
	"context"
	"encoding/base64"
	"net/http"

	"github.com/aws/aws-lambda-go/events"
	"github.com/fieldaudit/billing-audit/shared/webhook"
)

// receiver is what the handler needs of webhook.Receiver, declared here so
// the HTTP translation is tested on its own.
type receiver interface {
	Handle(ctx context.Context, req webhook.Request) webhook.Response
}

var _ receiver = (*webhook.Receiver)(nil)

// handler translates between the HTTP API and the receiver.
type handler struct{ rcv receiver }

// handle translates the HTTP API request into a webhook.Request and the
// receiver's answer back. Bodies arrive base64-encoded when API Gateway
// takes them for binary.
func (h handler) handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	body := []byte(req.Body)
	if req.IsBase64Encoded {
		var err error
		if body, err = base64.StdEncoding.DecodeString(req.Body); err != nil {
			return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusBadRequest, Body: `{"error":"bad request"}`,
				Headers: map[string]string{"Content-Type": "application/json"}}, nil
		}
	}
	res := h.rcv.Handle(ctx, webhook.Request{Headers: req.Headers, Body: body})
	return events.APIGatewayV2HTTPResponse{StatusCode: res.Status, Headers: res.Headers, Body: string(res.Body)}, nil
}

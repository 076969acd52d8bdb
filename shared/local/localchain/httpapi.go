package localchain

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
)

// WebhookRoute is the HTTP API route of the webhook function without its key: template.yaml's WebhookApiRoute is
// WebhookRoute/<WebhookPathKey or the stack id> (see WebhookRouteKey).
const WebhookRoute = "POST /webhooks/smartsheet"

// WebhookRouteKey is the webhook function's route with a fresh random last segment, as template.yaml keys it (the
// stack id when WebhookPathKey is empty): only the URL the scan registers reaches the function; the bare
// /webhooks/smartsheet is a 404, as in AWS.
func WebhookRouteKey() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return WebhookRoute + "/" + hex.EncodeToString(b)
}

// HTTPAPI stands in for an API Gateway HTTP API with one Lambda route (payload format 2.0): a net/http server on
// loopback that turns each matching request into an events.APIGatewayV2HTTPRequest, invokes the function and turns
// its events.APIGatewayV2HTTPResponse back into the HTTP answer. Other paths and methods get API Gateway's 404.
type HTTPAPI struct {
	// RouteKey is "METHOD /path" (WebhookRoute).
	RouteKey string
	// Function is invoked once per request (shared/local/rie.Function).
	Function Invoker
	// Log receives one line per request (default: discard).
	Log *slog.Logger

	srv      *http.Server
	ln       net.Listener
	done     chan struct{}
	requests atomic.Int64
}

// Integration answers API Gateway gives when the function fails: the bodies HTTP APIs send.
const (
	notFoundBody    = `{"message":"Not Found"}`
	internalErrBody = `{"message":"Internal Server Error"}`
)

// StartHTTPAPI serves api on 127.0.0.1 at a free port.
func StartHTTPAPI(api *HTTPAPI) (*HTTPAPI, error) {
	if _, _, ok := strings.Cut(api.RouteKey, " /"); !ok {
		return nil, fmt.Errorf("http api: route key %q is not \"METHOD /path\"", api.RouteKey)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("http api: listen: %w", err)
	}
	api.ln, api.done = ln, make(chan struct{})
	api.srv = &http.Server{Handler: api, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		defer close(api.done)
		_ = api.srv.Serve(ln)
	}()
	return api, nil
}

// URL is the API's root, http://127.0.0.1:port (the stage is $default, so routes hang directly off it).
func (a *HTTPAPI) URL() string { return "http://" + a.ln.Addr().String() }

// RouteURL is the URL of the route: what Smartsheet is given as the callback URL.
func (a *HTTPAPI) RouteURL() string {
	_, path, _ := strings.Cut(a.RouteKey, " ")
	return a.URL() + path
}

// Requests is the number of requests that reached the function.
func (a *HTTPAPI) Requests() int64 { return a.requests.Load() }

// Close stops serving; callbacks then fail to connect, as with an API that is gone.
func (a *HTTPAPI) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := a.srv.Shutdown(ctx)
	<-a.done
	return err
}

// ServeHTTP is the route: match, translate, invoke, translate back.
func (a *HTTPAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	method, path, _ := strings.Cut(a.RouteKey, " ")
	if r.Method != method || r.URL.Path != path {
		writeJSON(w, http.StatusNotFound, notFoundBody)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 10<<20+1))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, `{"message":"Bad Request"}`)
		return
	}
	if len(body) > 10<<20 { // HTTP APIs take payloads up to 10 MB
		writeJSON(w, http.StatusRequestEntityTooLarge, `{"message":"Request Entity Too Large"}`)
		return
	}
	ev := a.Request(r, body, time.Now())
	payload, err := json.Marshal(ev)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, internalErrBody)
		return
	}
	a.requests.Add(1)
	start := time.Now()
	out, err := a.Function.Invoke(r.Context(), payload)
	took := time.Since(start)
	if err != nil {
		// A function error or a failed invocation: API Gateway answers 500 and keeps the detail to itself.
		a.logger().ErrorContext(r.Context(), "http api: invoke", "route", a.RouteKey, "requestId", ev.RequestContext.RequestID, "error", err)
		writeJSON(w, http.StatusInternalServerError, internalErrBody)
		return
	}
	res, err := Response(out)
	if err != nil {
		a.logger().ErrorContext(r.Context(), "http api: function response", "route", a.RouteKey, "error", err)
		writeJSON(w, http.StatusInternalServerError, internalErrBody)
		return
	}
	a.logger().InfoContext(r.Context(), "http api", "route", a.RouteKey, "status", res.StatusCode, "took", took.Round(time.Millisecond))
	writeResponse(w, res)
}

// Request is the payload-2.0 event API Gateway makes of r: header names in lower case, repeated headers and query
// parameters joined with commas, cookies apart, the body as text or, when it is not text, base64.
func (a *HTTPAPI) Request(r *http.Request, body []byte, at time.Time) events.APIGatewayV2HTTPRequest {
	headers := map[string]string{}
	for k, vs := range r.Header {
		if strings.EqualFold(k, "Cookie") {
			continue
		}
		headers[strings.ToLower(k)] = strings.Join(vs, ",")
	}
	host, port, _ := net.SplitHostPort(r.Host)
	if host == "" {
		host = r.Host
	}
	headers["host"] = r.Host
	headers["content-length"] = strconv.Itoa(len(body))
	sourceIP, _, _ := net.SplitHostPort(r.RemoteAddr)
	headers["x-forwarded-for"] = sourceIP
	headers["x-forwarded-proto"] = "http"
	if port != "" {
		headers["x-forwarded-port"] = port
	}
	requestID := newID()
	headers["x-amzn-trace-id"] = "Root=1-" + strconv.FormatInt(at.Unix(), 16) + "-" + requestID[:24]
	var query map[string]string
	if q := r.URL.Query(); len(q) > 0 {
		query = map[string]string{}
		for k, vs := range q {
			query[k] = strings.Join(vs, ",")
		}
	}
	var cookies []string
	for _, c := range r.Cookies() {
		cookies = append(cookies, c.String())
	}
	ev := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: a.RouteKey, RawPath: r.URL.Path, RawQueryString: r.URL.RawQuery,
		Cookies: cookies, Headers: headers, QueryStringParameters: query,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey: a.RouteKey, AccountID: "123456789012", Stage: "$default", RequestID: requestID,
			APIID: "local", DomainName: host, DomainPrefix: strings.SplitN(host, ".", 2)[0],
			Time: at.UTC().Format("02/Jan/2006:15:04:05 -0700"), TimeEpoch: at.UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method: r.Method, Path: r.URL.Path, Protocol: r.Proto, SourceIP: sourceIP, UserAgent: r.UserAgent(),
			},
		},
	}
	if len(body) > 0 {
		if isText(r.Header) && utf8.Valid(body) {
			ev.Body = string(body)
		} else {
			ev.Body, ev.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
		}
	}
	return ev
}

// isText says whether API Gateway passes a body of these headers as text: not content-encoded, and of a textual
// media type (text/*, JSON, XML, JavaScript, form data). Everything else arrives base64-encoded.
func isText(h http.Header) bool {
	if h.Get("Content-Encoding") != "" {
		return false
	}
	ct := h.Get("Content-Type")
	if ct == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	switch {
	case strings.HasPrefix(mt, "text/"), strings.HasSuffix(mt, "+json"), strings.HasSuffix(mt, "+xml"):
		return true
	}
	switch mt {
	case "application/json", "application/xml", "application/javascript", "application/x-www-form-urlencoded":
		return true
	}
	return false
}

// Response reads a function's answer as API Gateway does with payload format 2.0: a JSON object with statusCode is
// the response; anything else valid JSON is the body of a 200 application/json answer.
func Response(out []byte) (events.APIGatewayV2HTTPResponse, error) {
	var probe map[string]json.RawMessage
	if json.Unmarshal(out, &probe) == nil {
		if _, ok := probe["statusCode"]; ok {
			var res events.APIGatewayV2HTTPResponse
			if err := json.Unmarshal(out, &res); err != nil {
				return res, fmt.Errorf("malformed response: %w", err)
			}
			if res.StatusCode < 100 || res.StatusCode > 599 {
				return res, fmt.Errorf("status code %d", res.StatusCode)
			}
			return res, nil
		}
	}
	if !json.Valid(out) {
		return events.APIGatewayV2HTTPResponse{}, errors.New("response is not JSON")
	}
	return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusOK, Body: string(out),
		Headers: map[string]string{"Content-Type": "application/json"}}, nil
}

func writeResponse(w http.ResponseWriter, res events.APIGatewayV2HTTPResponse) {
	body := []byte(res.Body)
	if res.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(res.Body)
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, internalErrBody)
			return
		}
		body = b
	}
	for k, v := range res.Headers {
		w.Header().Set(k, v)
	}
	for k, vs := range res.MultiValueHeaders {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	for _, c := range res.Cookies {
		w.Header().Add("Set-Cookie", c)
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Header().Set("Apigw-Requestid", newID()[:16])
	w.WriteHeader(res.StatusCode)
	_, _ = w.Write(body)
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (a *HTTPAPI) logger() *slog.Logger {
	if a.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return a.Log
}

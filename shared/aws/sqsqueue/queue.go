// Package sqsqueue puts the pipeline's work on SQS queues: each changed
// sheet of a run for the sheet workers (ANALYSIS_QUEUE_URL), and the webhook
// function's refreshes (WEBHOOK_QUEUE_URL).
package sqsqueue

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
)

// API is the part of the SQS client used here.
type API interface {
	SendMessage(ctx context.Context, in *awssqs.SendMessageInput, optFns ...func(*awssqs.Options)) (*awssqs.SendMessageOutput, error)
}

// SheetQueue is a pipeline.SheetQueue on SQS: one small message per sheet
// (the worker reads the rows itself, so no message approaches SQS's size
// limit).
type SheetQueue struct {
	api API
	url string
}

var _ pipeline.SheetQueue = (*SheetQueue)(nil)

// NewSheetQueue sends to the queue at url.
func NewSheetQueue(api API, url string) *SheetQueue { return &SheetQueue{api: api, url: url} }

// SendSheetWork queues one sheet's work.
func (q *SheetQueue) SendSheetWork(ctx context.Context, w pipeline.SheetWork) error {
	body, err := pipeline.EncodeSheetWork(w)
	if err != nil {
		return err
	}
	return Send(ctx, q.api, q.url, body)
}

// Send puts one message on the queue at url.
func Send(ctx context.Context, api API, url string, body []byte) error {
	_, err := api.SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(string(body))})
	if err != nil {
		return fmt.Errorf("send to %s: %w", url, err)
	}
	return nil
}

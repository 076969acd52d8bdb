// Package sqsqueue sends pipeline batches to an SQS queue.
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

// BatchQueue is a pipeline.BatchQueue on SQS; batches over the message size
// limit go to blobs, with a pointer in the message.
type BatchQueue struct {
	api   API
	url   string
	blobs pipeline.Blobs
}

var _ pipeline.BatchQueue = (*BatchQueue)(nil)

// NewBatchQueue sends to the queue at url.
func NewBatchQueue(api API, url string, blobs pipeline.Blobs) *BatchQueue {
	return &BatchQueue{api: api, url: url, blobs: blobs}
}

// SendBatch queues one batch.
func (q *BatchQueue) SendBatch(ctx context.Context, b pipeline.Batch) error {
	body, err := pipeline.EncodeBatch(ctx, b, q.blobs, pipeline.MaxInlineBatch)
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

// Package localchain runs the serverless chain locally: it stands in for the Lambda service's SQS event-source
// mappings (receive a batch, invoke the function with the real SQS event, delete what did not fail) between the local
// AWS stack in moto (shared/local/localstack) and the real bootstraps under the runtime emulator (shared/local/rie).
package localchain

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// SQSAPI is the part of the SQS client the poller uses.
type SQSAPI interface {
	ReceiveMessage(ctx context.Context, in *awssqs.ReceiveMessageInput, optFns ...func(*awssqs.Options)) (*awssqs.ReceiveMessageOutput, error)
	DeleteMessageBatch(ctx context.Context, in *awssqs.DeleteMessageBatchInput, optFns ...func(*awssqs.Options)) (*awssqs.DeleteMessageBatchOutput, error)
	SendMessage(ctx context.Context, in *awssqs.SendMessageInput, optFns ...func(*awssqs.Options)) (*awssqs.SendMessageOutput, error)
	GetQueueAttributes(ctx context.Context, in *awssqs.GetQueueAttributesInput, optFns ...func(*awssqs.Options)) (*awssqs.GetQueueAttributesOutput, error)
}

var _ SQSAPI = (*awssqs.Client)(nil)

// Invoker invokes a function with a payload (shared/local/rie.Function).
type Invoker interface {
	Invoke(ctx context.Context, payload []byte) ([]byte, error)
}

// CopyAttribute marks the copy of a message that a Duplicate poller sent.
const CopyAttribute = "localchain-copy"

// Poller is one event-source mapping: a queue feeding a function, with ReportBatchItemFailures.
type Poller struct {
	SQS      SQSAPI
	QueueURL string
	Function Invoker
	// BatchSize is the most messages per invocation (the template's BatchSize; default 10).
	BatchSize int32
	// Visibility is the visibility timeout of a received batch (default: the queue's). Short values make retries
	// of failed messages quick; whole seconds.
	Visibility time.Duration
	// Duplicate is chaos: every message is delivered twice (a copy, marked with CopyAttribute, is sent on its first
	// receipt), as SQS's at-least-once delivery may.
	Duplicate bool
	// Shuffle is chaos: when set, each poll receives up to ten messages, shuffles them and invokes the function with
	// them in batches of BatchSize in that order, so that messages reach the function out of the order they were
	// sent in, as a standard queue may deliver them.
	Shuffle *rand.Rand
	// BeforeInvoke, when set, sees each event before the function does (tests kill the function from here).
	BeforeInvoke func(ctx context.Context, ev events.SQSEvent)
	// Log receives one line per invocation (default: discard).
	Log *slog.Logger

	initMu      sync.Mutex // Run and Drain may poll the same mapping at once
	arn, region string
}

// Result is what one poll did.
type Result struct {
	Received   int   // messages in the invocation
	Failed     int   // reported in batchItemFailures, or all of them when the invocation failed
	Duplicated int   // copies sent (Duplicate)
	InvokeErr  error // the invocation's own failure (function error, emulator gone)
}

// PollOnce receives one batch (waiting up to wait for it) and, when there is one, invokes the function with it and
// deletes the messages that did not fail. A failed invocation leaves the whole batch to reappear after the
// visibility timeout, and moto's redrive policy moves a message to the dead-letter queue after maxReceiveCount.
// With Shuffle it receives up to ten messages and invokes the function once per batch of them, in a shuffled order.
func (p *Poller) PollOnce(ctx context.Context, wait time.Duration) (Result, error) {
	if err := p.init(ctx); err != nil {
		return Result{}, err
	}
	in := &awssqs.ReceiveMessageInput{
		QueueUrl:                    aws.String(p.QueueURL),
		MaxNumberOfMessages:         p.batchSize(),
		WaitTimeSeconds:             int32(wait / time.Second),
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
		MessageAttributeNames:       []string{"All"},
	}
	if p.Visibility > 0 {
		in.VisibilityTimeout = int32(p.Visibility / time.Second)
	}
	if p.Shuffle != nil {
		in.MaxNumberOfMessages = 10
	}
	out, err := p.SQS.ReceiveMessage(ctx, in)
	if err != nil {
		return Result{}, fmt.Errorf("receive from %s: %w", p.QueueURL, err)
	}
	res := Result{Received: len(out.Messages)}
	if len(out.Messages) == 0 {
		return res, nil
	}
	recs := make([]events.SQSMessage, 0, len(out.Messages))
	for _, m := range out.Messages {
		rec := p.record(m)
		recs = append(recs, rec)
		if p.Duplicate && !IsCopy(rec) && rec.Attributes["ApproximateReceiveCount"] == "1" {
			if _, err := p.SQS.SendMessage(ctx, &awssqs.SendMessageInput{
				QueueUrl: aws.String(p.QueueURL), MessageBody: m.Body,
				MessageAttributes: map[string]sqstypes.MessageAttributeValue{
					CopyAttribute: {DataType: aws.String("String"), StringValue: aws.String(rec.MessageId)},
				},
			}); err != nil {
				return res, fmt.Errorf("duplicate %s: %w", rec.MessageId, err)
			}
			res.Duplicated++
		}
	}
	if p.Shuffle != nil {
		p.Shuffle.Shuffle(len(recs), func(i, j int) { recs[i], recs[j] = recs[j], recs[i] })
	}
	for len(recs) > 0 {
		n := min(len(recs), int(p.batchSize()))
		if err := p.invoke(ctx, recs[:n], &res); err != nil {
			return res, err
		}
		recs = recs[n:]
	}
	return res, nil
}

// invoke invokes the function with one batch and deletes the messages that did not fail.
func (p *Poller) invoke(ctx context.Context, recs []events.SQSMessage, res *Result) error {
	ev := events.SQSEvent{Records: recs}
	handles := map[string]string{}
	for _, rec := range recs {
		handles[rec.MessageId] = rec.ReceiptHandle
	}
	if p.BeforeInvoke != nil {
		p.BeforeInvoke(ctx, ev)
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	start := time.Now()
	body, err := p.Function.Invoke(ctx, payload)
	failed := map[string]bool{}
	var invokeErr error
	if err != nil {
		// A function error or a dead environment: the whole batch is retried, as Lambda does.
		invokeErr = err
		res.InvokeErr = errors.Join(res.InvokeErr, err)
		for id := range handles {
			failed[id] = true
		}
	} else {
		var resp events.SQSEventResponse
		if err := json.Unmarshal(body, &resp); err != nil {
			return fmt.Errorf("function response %q: %w", body, err)
		}
		for _, f := range resp.BatchItemFailures {
			if _, ok := handles[f.ItemIdentifier]; !ok {
				// Lambda treats an unknown identifier as a failure of the whole batch.
				for id := range handles {
					failed[id] = true
				}
				break
			}
			failed[f.ItemIdentifier] = true
		}
	}
	res.Failed += len(failed)
	var del []sqstypes.DeleteMessageBatchRequestEntry
	for _, rec := range ev.Records {
		if !failed[rec.MessageId] {
			del = append(del, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(len(del))), ReceiptHandle: aws.String(rec.ReceiptHandle)})
		}
	}
	if len(del) > 0 {
		out, err := p.SQS.DeleteMessageBatch(ctx, &awssqs.DeleteMessageBatchInput{QueueUrl: aws.String(p.QueueURL), Entries: del})
		if err != nil {
			return fmt.Errorf("delete from %s: %w", p.QueueURL, err)
		}
		if len(out.Failed) > 0 {
			return fmt.Errorf("delete from %s: %d failed: %s", p.QueueURL, len(out.Failed), aws.ToString(out.Failed[0].Message))
		}
	}
	p.logger().InfoContext(ctx, "invoked", "queue", p.queueName(), "messages", len(recs), "failed", len(failed),
		"duplicated", res.Duplicated, "took", time.Since(start).Round(time.Millisecond), "error", invokeErr)
	return nil
}

// Drain polls until the queue holds no message, visible or in flight (failed ones come back after the visibility
// timeout and are retried), or ctx ends. It returns the sum of what the polls did.
func (p *Poller) Drain(ctx context.Context) (Result, error) {
	var total Result
	for {
		r, err := p.PollOnce(ctx, time.Second)
		total.add(r)
		if err != nil {
			return total, err
		}
		if r.Received > 0 {
			continue
		}
		n, err := p.Pending(ctx)
		if err != nil {
			return total, err
		}
		if n == 0 {
			return total, nil
		}
		if err := ctx.Err(); err != nil {
			return total, fmt.Errorf("drain %s: %d messages left: %w", p.queueName(), n, err)
		}
	}
}

// Run polls until ctx ends (the long-running mapping of cmd/localchain). Errors are logged and retried.
func (p *Poller) Run(ctx context.Context) {
	for ctx.Err() == nil {
		if _, err := p.PollOnce(ctx, 5*time.Second); err != nil && ctx.Err() == nil {
			p.logger().ErrorContext(ctx, "poll", "queue", p.queueName(), "error", err)
			time.Sleep(time.Second)
		}
	}
}

// Pending is the number of messages on the queue, visible, in flight or delayed.
func (p *Poller) Pending(ctx context.Context) (int, error) {
	out, err := p.SQS.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{
		QueueUrl: aws.String(p.QueueURL),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible, sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed},
	})
	if err != nil {
		return 0, fmt.Errorf("attributes of %s: %w", p.QueueURL, err)
	}
	n := 0
	for _, v := range out.Attributes {
		i, _ := strconv.Atoi(v)
		n += i
	}
	return n, nil
}

// IsCopy says whether a record is the copy a Duplicate poller sent.
func IsCopy(m events.SQSMessage) bool {
	_, ok := m.MessageAttributes[CopyAttribute]
	return ok
}

func (p *Poller) init(ctx context.Context) error {
	p.initMu.Lock()
	defer p.initMu.Unlock()
	if p.arn != "" {
		return nil
	}
	out, err := p.SQS.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{
		QueueUrl: aws.String(p.QueueURL), AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return fmt.Errorf("attributes of %s: %w", p.QueueURL, err)
	}
	p.arn = out.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]
	if parts := strings.Split(p.arn, ":"); len(parts) > 3 {
		p.region = parts[3]
	}
	return nil
}

// record is the message as Lambda's SQS event source hands it over.
func (p *Poller) record(m sqstypes.Message) events.SQSMessage {
	body := aws.ToString(m.Body)
	sum := md5.Sum([]byte(body))
	rec := events.SQSMessage{
		MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle), Body: body,
		Md5OfBody: hex.EncodeToString(sum[:]), Attributes: m.Attributes, MessageAttributes: map[string]events.SQSMessageAttribute{},
		EventSource: "aws:sqs", EventSourceARN: p.arn, AWSRegion: p.region,
	}
	if rec.Attributes == nil {
		rec.Attributes = map[string]string{}
	}
	for k, v := range m.MessageAttributes {
		rec.MessageAttributes[k] = events.SQSMessageAttribute{StringValue: v.StringValue, BinaryValue: v.BinaryValue, DataType: aws.ToString(v.DataType)}
	}
	return rec
}

func (p *Poller) batchSize() int32 {
	if p.BatchSize <= 0 {
		return 10
	}
	return p.BatchSize
}

func (p *Poller) queueName() string {
	return p.QueueURL[strings.LastIndex(p.QueueURL, "/")+1:]
}

func (p *Poller) logger() *slog.Logger {
	if p.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Log
}

// add counts what r did into the total.
func (total *Result) add(r Result) {
	total.Received += r.Received
	total.Failed += r.Failed
	total.Duplicated += r.Duplicated
	if r.InvokeErr != nil {
		total.InvokeErr = errors.Join(total.InvokeErr, r.InvokeErr)
	}
}

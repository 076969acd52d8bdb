// Package bus announces pipeline events on an EventBridge bus.
package bus

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	awseb "github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
)

// Event source and detail type of a completed run; the template's rule matches them.
const (
	Source                 = "billing-audit"
	DetailTypeRunCompleted = "AuditRunCompleted"
)

// API is the part of the EventBridge client used here.
type API interface {
	PutEvents(ctx context.Context, in *awseb.PutEventsInput, optFns ...func(*awseb.Options)) (*awseb.PutEventsOutput, error)
}

// Publisher is a pipeline.Publisher on an event bus.
type Publisher struct {
	api API
	bus string
}

var _ pipeline.Publisher = (*Publisher)(nil)

// New publishes on the named bus.
func New(api API, bus string) *Publisher { return &Publisher{api: api, bus: bus} }

// RunCompleted puts one AuditRunCompleted event.
func (p *Publisher) RunCompleted(ctx context.Context, e pipeline.RunCompleted) error {
	detail, err := json.Marshal(e)
	if err != nil {
		return err
	}
	out, err := p.api.PutEvents(ctx, &awseb.PutEventsInput{Entries: []types.PutEventsRequestEntry{{
		EventBusName: aws.String(p.bus), Source: aws.String(Source), DetailType: aws.String(DetailTypeRunCompleted),
		Detail: aws.String(string(detail)),
	}}})
	if err != nil {
		return fmt.Errorf("put %s for run %s: %w", DetailTypeRunCompleted, e.RunID, err)
	}
	if out.FailedEntryCount > 0 {
		msg := "unknown"
		if len(out.Entries) > 0 && out.Entries[0].ErrorMessage != nil {
			msg = *out.Entries[0].ErrorMessage
		}
		return fmt.Errorf("put %s for run %s: refused: %s", DetailTypeRunCompleted, e.RunID, msg)
	}
	return nil
}

package sqsqueue

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/fieldaudit/billing-audit/shared/pipeline"
)

// RefreshQueue is a pipeline.RefreshQueue on SQS (WEBHOOK_QUEUE_URL): the
// webhook function sends {"kind":"refresh",...}; the analyze function runs
// them.
type RefreshQueue struct {
	api API
	url string
}

var _ pipeline.RefreshQueue = (*RefreshQueue)(nil)

// NewRefreshQueue sends to the queue at url.
func NewRefreshQueue(api API, url string) *RefreshQueue { return &RefreshQueue{api: api, url: url} }

// SendRefresh queues one refresh.
func (q *RefreshQueue) SendRefresh(ctx context.Context, f pipeline.Refresh) error {
	f.Kind = pipeline.RefreshKind
	body, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("encode refresh of sheet %d: %w", f.SheetID, err)
	}
	return Send(ctx, q.api, q.url, body)
}

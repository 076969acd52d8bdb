package audit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// AttributionSource says how a change's author and time were learned.
type AttributionSource string

// The attribution sources, from most to least precise.
const (
	SourceWebhook     AttributionSource = "webhook"
	SourceWriterInfo  AttributionSource = "writer-info"
	SourceCellHistory AttributionSource = "cell-history"
	SourceUnknown     AttributionSource = "unknown"
)

// Attribution says who made a change and when. Time is nil when only the
// window (WindowStart, WindowEnd] in which it happened is known.
type Attribution struct {
	User        string            `json:"user,omitempty"` // email
	Name        string            `json:"name,omitempty"`
	Time        *time.Time        `json:"time,omitempty"`
	Source      AttributionSource `json:"source"`
	WindowStart time.Time         `json:"windowStart,omitzero"`
	WindowEnd   time.Time         `json:"windowEnd,omitzero"`
}

// Attributor is the port through which the pipeline learns who made a
// change: webhooks, writer info, cell history. ok=false means "I don't know,
// ask the next one".
type Attributor interface {
	Attribute(ctx context.Context, c *Change) (a Attribution, ok bool, err error)
}

// BatchAttributor is an [Attributor] that can keep state for the duration of
// one batch of changes (a cache of what every change of the batch asks):
// the pipeline calls ForBatch once per batch and asks the result about that
// batch's changes, possibly concurrently.
type BatchAttributor interface {
	Attributor
	ForBatch() Attributor
}

// AttributorFunc adapts a function to [Attributor].
type AttributorFunc func(ctx context.Context, c *Change) (Attribution, bool, error)

// Attribute calls f.
func (f AttributorFunc) Attribute(ctx context.Context, c *Change) (Attribution, bool, error) {
	return f(ctx, c)
}

// AttributeChain asks each attributor in turn and sets c.Attribution from the
// first that answers; a window the answer leaves empty is kept from c. When
// none answers, c keeps an unknown attribution with its window (as set by
// [Detector.Compare]). An attributor's error does not stop the chain: the
// errors are joined and returned for the caller to log, while c still gets
// the best attribution available. A cancelled ctx stops the chain.
func AttributeChain(ctx context.Context, c *Change, chain ...Attributor) error {
	var errs []error
	for _, at := range chain {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		a, ok, err := at.Attribute(ctx, c)
		if err != nil {
			errs = append(errs, fmt.Errorf("attribute change %s: %w", c.ChangeID, err))
			continue
		}
		if !ok {
			continue
		}
		if a.WindowStart.IsZero() && a.WindowEnd.IsZero() {
			a.WindowStart, a.WindowEnd = c.Attribution.WindowStart, c.Attribution.WindowEnd
		}
		if a.Time != nil {
			t := a.Time.UTC()
			a.Time = &t
		}
		c.Attribution = a
		return errors.Join(errs...)
	}
	c.Attribution = Attribution{
		Source:      SourceUnknown,
		WindowStart: c.Attribution.WindowStart,
		WindowEnd:   c.Attribution.WindowEnd,
	}
	return errors.Join(errs...)
}

// EventCoverage tells whether a sheet's edits reach the attribution records
// as events (a webhook delivers them, `billing-audit listen` or the webhook
// function stores them): on such a sheet the event of a changed cell names
// its editor, even when it arrives after the scan.
type EventCoverage interface {
	CoversSheet(ctx context.Context, sheetID int64) bool
}

// WriterInfo attributes a change from its row's "modified by / at" when that
// is proven right. Writer info is the row's last save of any column, tracked
// or not: a save of an untracked column (Pole #) after a tracked edit, by
// anyone, becomes the row's writer info. So it names the change's author
// only when the change is the row's only change since the last scan: a late
// row never saved after its creation (ModifiedAt = CreatedAt, and the
// modifier its creator when the read names the creator), or a cell
// change whose row's other cells are all as the baseline saw them
// (s.UntrackedSame: the scan read every column). On a sheet whose cell edits
// come as events (cellEvents) the cell's event names the editor and writer
// info is not used for a cell change at all. Otherwise cell history, within
// its budget, or the change's window says what is known.
//
// In every case: the row has exactly one tracked change since its baseline
// (changesInRow == 1), the row names its modifier, and the modification time
// falls in the change's window when one is known. Deleted rows have no
// writer info. The modification time is in whole seconds (see
// [StampedAfter]).
func WriterInfo(s RowSnapshot, changesInRow int, c *Change, cellEvents bool) (Attribution, bool) {
	if changesInRow != 1 || s.ModifiedAt.IsZero() || (s.ModifiedBy == "" && s.ModifiedByName == "") {
		return Attribution{}, false
	}
	if c.Kind == KindRowDeleted || c.SheetID != s.SheetID || c.RowID != s.RowID {
		return Attribution{}, false
	}
	// Smartsheet's times have whole seconds: someone else's save in the
	// second of the creation (automation filling a cell of a new row) leaves
	// ModifiedAt = CreatedAt, so the modifier must be the creator too.
	proven := c.Kind == KindRowAddedLate && !s.CreatedAt.IsZero() && s.CreatedAt.Equal(s.ModifiedAt) &&
		(s.CreatedBy == "" || strings.EqualFold(s.CreatedBy, s.ModifiedBy))
	if !proven && (cellEvents || !s.UntrackedSame) {
		return Attribution{}, false
	}
	t := s.ModifiedAt.UTC()
	ws, we := c.Attribution.WindowStart, c.Attribution.WindowEnd
	if (!ws.IsZero() && !StampedAfter(t, ws)) || (!we.IsZero() && t.After(we)) {
		return Attribution{}, false
	}
	return Attribution{
		User: s.ModifiedBy, Name: s.ModifiedByName, Time: &t, Source: SourceWriterInfo,
		WindowStart: ws, WindowEnd: we,
	}, true
}

// StampedAfter reports whether an edit that Smartsheet stamped t may have
// happened after start. Smartsheet's times have whole seconds, so the edit
// happened in [t, t+1s): one stamped with the second that holds a start
// taken from our clock (10:00:05 for a scan started at 10:00:05.300) may
// well be later than it. A start that is itself a Smartsheet time (a
// baseline's modification) and equal to t is the same second: not after.
func StampedAfter(t, start time.Time) bool {
	return !t.Equal(start) && start.Before(t.Add(time.Second))
}

// rowRef identifies a row across sheets.
type rowRef struct{ sheet, row int64 }

// WriterInfoAttributor attributes changes from row writer info (see
// [WriterInfo]). Build it once per scanned batch with [NewWriterInfoAttributor].
type WriterInfoAttributor struct {
	snaps  map[rowRef]RowSnapshot
	counts map[rowRef]int
	events EventCoverage // nil: no sheet's edits come as events
}

var _ Attributor = (*WriterInfoAttributor)(nil)

// NewWriterInfoAttributor indexes the scanned rows and counts the changes
// detected in each; events, when not nil, tells the sheets whose edits come
// as events (see [WriterInfo]).
func NewWriterInfoAttributor(snaps []RowSnapshot, changes []Change, events EventCoverage) *WriterInfoAttributor {
	w := &WriterInfoAttributor{
		snaps:  make(map[rowRef]RowSnapshot, len(snaps)),
		counts: make(map[rowRef]int),
		events: events,
	}
	for _, s := range snaps {
		w.snaps[rowRef{s.SheetID, s.RowID}] = s
	}
	for _, c := range changes {
		w.counts[rowRef{c.SheetID, c.RowID}]++
	}
	return w
}

// Attribute implements [Attributor].
func (w *WriterInfoAttributor) Attribute(ctx context.Context, c *Change) (Attribution, bool, error) {
	ref := rowRef{c.SheetID, c.RowID}
	s, ok := w.snaps[ref]
	if !ok {
		return Attribution{}, false, nil
	}
	a, ok := WriterInfo(s, w.counts[ref], c, w.events != nil && w.events.CoversSheet(ctx, c.SheetID))
	return a, ok, nil
}

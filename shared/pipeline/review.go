package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	"github.com/fieldaudit/billing-audit/shared/audit"
)

// reviewChunk bounds the disposition entries appended at once.
const reviewChunk = 500

// recordReviews seals, as disposition entries, the review columns the
// verification found changed since the ledger last recorded them (who saved
// them, when, the new values): the review of an exception is audited like
// the exception. It appends only to a ledger that passed its own check, under
// the audit-log lease the caller holds, and moves v's head on so that the
// digest signed next covers them.
func (r *Runner) recordReviews(ctx context.Context, v *audit.Verification) error {
	if len(v.ReviewChanges) == 0 || !v.LedgerOK() {
		return nil
	}
	head, ok, err := r.store.LedgerHead(ctx)
	if err != nil || !ok {
		return wrapErr("read the ledger head before recording dispositions", err)
	}
	if head.Seq != v.HeadSeq || head.Hash != v.HeadHash {
		return fmt.Errorf("record dispositions: the ledger moved on since it was verified (entry %d, verified %d): %w", head.Seq, v.HeadSeq, ErrLedgerConflict)
	}
	now := r.opts.Clock().UTC()
	for chunk := range slices.Chunk(v.ReviewChanges, reviewChunk) {
		if err := r.renewLease(ctx); err != nil {
			return err
		}
		entries := make([]audit.LedgerEntry, 0, len(chunk))
		for _, rv := range chunk {
			head = audit.NextEntry(head, audit.EntryDisposition, rv.ChangeID, now, audit.ReviewFields(rv))
			entries = append(entries, head)
		}
		if err := r.store.AppendLedger(ctx, entries); err != nil {
			return fmt.Errorf("append disposition entries %d-%d: %w", entries[0].Seq, head.Seq, err)
		}
		v.HeadSeq, v.HeadHash = head.Seq, head.Hash
	}
	r.log.InfoContext(ctx, "dispositions recorded in the ledger", slog.Int("changes", len(v.ReviewChanges)), slog.Uint64("head", head.Seq))
	return nil
}

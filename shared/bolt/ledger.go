package bolt

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
	bbolt "go.etcd.io/bbolt"
)

var _ pipeline.Ledger = (*Store)(nil)

// LedgerHead returns the last ledger entry.
func (s *Store) LedgerHead(_ context.Context) (audit.LedgerEntry, bool, error) {
	var e audit.LedgerEntry
	var ok bool
	err := s.db.View(func(tx *bbolt.Tx) error {
		k, v := tx.Bucket(bucketLedger).Cursor().Last()
		if k == nil {
			return nil
		}
		ok = true
		var err error
		e, err = audit.DecodeEntry(v)
		return err
	})
	if err != nil {
		return e, false, fmt.Errorf("read ledger head: %w", err)
	}
	return e, ok, nil
}

// AppendLedger appends entries in one transaction, if they continue the
// chain from its head (see pipeline.Ledger): the transaction is the one
// writer extending the chain.
func (s *Store) AppendLedger(_ context.Context, entries []audit.LedgerEntry) error {
	if len(entries) == 0 {
		return nil
	}
	err := s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketLedger)
		head := audit.LedgerEntry{Hash: audit.GenesisHash}
		if k, v := b.Cursor().Last(); k != nil {
			var err error
			if head, err = audit.DecodeEntry(v); err != nil {
				return fmt.Errorf("ledger head: %w", err)
			}
		}
		for _, e := range entries {
			if e.Seq != head.Seq+1 || e.Prev != head.Hash {
				return fmt.Errorf("entry %d after head %d: %w", e.Seq, head.Seq, pipeline.ErrLedgerConflict)
			}
			if err := b.Put(seqKey(e.Seq), audit.EncodeEntry(e)); err != nil {
				return err
			}
			head = e
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("append %d ledger entries: %w", len(entries), err)
	}
	return nil
}

// LedgerEntries calls fn on each entry from seq from on. It reads in
// transactions of ledgerPage entries, so fn may take its time and the file
// is not held open for a whole pass.
func (s *Store) LedgerEntries(ctx context.Context, from uint64, fn func(audit.LedgerEntry) error) error {
	next := max(from, 1)
	for {
		var page []audit.LedgerEntry
		err := s.db.View(func(tx *bbolt.Tx) error {
			c := tx.Bucket(bucketLedger).Cursor()
			for k, v := c.Seek(seqKey(next)); k != nil && len(page) < ledgerPage; k, v = c.Next() {
				e, err := audit.DecodeEntry(v)
				if err != nil {
					e = audit.UnreadableEntry(binary.BigEndian.Uint64(k), err)
				}
				page = append(page, e)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("read ledger from %d: %w", next, err)
		}
		for _, e := range page {
			if err := fn(e); err != nil {
				return err
			}
		}
		if len(page) < ledgerPage {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		next = page[len(page)-1].Seq + 1
	}
}

const ledgerPage = 1000

// LedgerEntriesBySeq reads the entries with these sequence numbers.
func (s *Store) LedgerEntriesBySeq(_ context.Context, seqs []uint64) (map[uint64]audit.LedgerEntry, error) {
	out := make(map[uint64]audit.LedgerEntry, len(seqs))
	err := s.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketLedger)
		for _, seq := range seqs {
			v := b.Get(seqKey(seq))
			if v == nil {
				continue
			}
			e, err := audit.DecodeEntry(v)
			if err != nil {
				e = audit.UnreadableEntry(seq, err)
			}
			out[seq] = e
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read ledger entries: %w", err)
	}
	return out, nil
}

func seqKey(seq uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], seq)
	return b[:]
}

var _ pipeline.Leases = (*Store)(nil)

// AcquireLease takes a lease for holder (see pipeline.Leases). Leases are
// kept in memory: the store's file is open in one process only.
func (s *Store) AcquireLease(_ context.Context, name, holder string, ttl time.Duration) (bool, error) {
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	now := s.now()
	if l, ok := s.leases[name]; ok && l.holder != holder && now.Before(l.until) {
		return false, nil
	}
	s.leases[name] = lease{holder: holder, until: now.Add(ttl)}
	return true, nil
}

// RenewLease extends a lease holder has and that has not expired.
func (s *Store) RenewLease(_ context.Context, name, holder string, ttl time.Duration) (bool, error) {
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	now := s.now()
	l, ok := s.leases[name]
	if !ok || l.holder != holder || !now.Before(l.until) {
		return false, nil
	}
	s.leases[name] = lease{holder: holder, until: now.Add(ttl)}
	return true, nil
}

// ReleaseLease frees a lease held by holder.
func (s *Store) ReleaseLease(_ context.Context, name, holder string) error {
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	if l, ok := s.leases[name]; ok && l.holder == holder {
		delete(s.leases, name)
	}
	return nil
}

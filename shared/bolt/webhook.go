package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/fieldaudit/billing-audit/shared/pipeline"
	"github.com/fieldaudit/billing-audit/shared/webhook"
	bbolt "go.etcd.io/bbolt"
)

// The local webhook stores of `billing-audit listen`: the shared secrets of
// our webhooks, the nonces of accepted callbacks, and the attribution
// records, in the same file as the rest of the state.

var (
	bucketWebhookSecrets = []byte("webhook-secrets") // webhook id → JSON SecretSet
	bucketWebhookNonces  = []byte("webhook-nonces")  // nonce → seen at (unix nanos)
	bucketWebhookRecords = []byte("webhook-records") // sheet|row|column|time|user|event → JSON Record
	bucketWebhookNewest  = []byte("webhook-newest")  // sheet id → newest record time (unix nanos)
)

// Defaults of the webhook stores.
const (
	// NonceTTL is how long a nonce is remembered: well past the receiver's
	// MaxSkew, after which a replay is refused by its timestamp anyway.
	NonceTTL = 2 * time.Hour
	// RecordTTL is how long an attribution record is kept: many scans.
	RecordTTL = 35 * 24 * time.Hour
)

var (
	_ pipeline.WebhookSecretStore = (*Store)(nil)
	_ pipeline.WebhookRecords     = (*Store)(nil)
	_ webhook.Nonces              = (*Store)(nil)
	_ webhook.RecordLookup        = (*Store)(nil)
	_ webhook.NewestRecordLookup  = (*Store)(nil)
)

// SecretSet returns the stored secrets of a webhook.
func (s *Store) SecretSet(_ context.Context, webhookID int64) (webhook.SecretSet, bool, error) {
	var set webhook.SecretSet
	var ok bool
	err := s.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketWebhookSecrets)
		if b == nil {
			return nil
		}
		v := b.Get(idKey(webhookID))
		if v == nil {
			return nil
		}
		ok = true
		return json.Unmarshal(v, &set)
	})
	if err != nil {
		return webhook.SecretSet{}, false, fmt.Errorf("read secret of webhook %d: %w", webhookID, err)
	}
	return set, ok, nil
}

// PutSecretSet stores the secrets of a webhook.
func (s *Store) PutSecretSet(_ context.Context, webhookID int64, set webhook.SecretSet) error {
	v, err := json.Marshal(set)
	if err != nil {
		return err
	}
	return s.update(bucketWebhookSecrets, func(b *bbolt.Bucket) error { return b.Put(idKey(webhookID), v) })
}

// DeleteSecretSet forgets the secrets of a webhook.
func (s *Store) DeleteSecretSet(_ context.Context, webhookID int64) error {
	return s.update(bucketWebhookSecrets, func(b *bbolt.Bucket) error { return b.Delete(idKey(webhookID)) })
}

// Seen records a nonce and reports whether it was already recorded (and
// not expired). Expired nonces are swept as new ones arrive.
func (s *Store) Seen(_ context.Context, nonce string, at time.Time) (bool, error) {
	var seen bool
	err := s.update(bucketWebhookNonces, func(b *bbolt.Bucket) error {
		k := []byte(nonce)
		if v := b.Get(k); len(v) == 8 && at.Sub(time.Unix(0, int64(binary.BigEndian.Uint64(v)))) < NonceTTL {
			seen = true
			return nil
		}
		if sweepDue(nonce) {
			if err := sweepNonces(b, at); err != nil {
				return err
			}
		}
		var v [8]byte
		binary.BigEndian.PutUint64(v[:], uint64(at.UnixNano()))
		return b.Put(k, v[:])
	})
	if err != nil {
		return false, fmt.Errorf("record nonce: %w", err)
	}
	return seen, nil
}

// sweepDue picks about one nonce in 256 to sweep the expired ones.
func sweepDue(nonce string) bool {
	h := fnv.New32a()
	h.Write([]byte(nonce))
	return h.Sum32()%256 == 0
}

func sweepNonces(b *bbolt.Bucket, now time.Time) error {
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if len(v) != 8 || now.Sub(time.Unix(0, int64(binary.BigEndian.Uint64(v)))) >= NonceTTL {
			if err := c.Delete(); err != nil {
				return err
			}
		}
	}
	return nil
}

// Forget removes a nonce recorded by Seen.
func (s *Store) Forget(_ context.Context, nonce string) error {
	return s.update(bucketWebhookNonces, func(b *bbolt.Bucket) error { return b.Delete([]byte(nonce)) })
}

// recordKey orders records by cell, then time: sheet|row|column|time, then
// user and event type so that a record stored twice is stored once.
func recordKey(r webhook.Record) []byte {
	k := recordPrefix(r.SheetID, r.RowID, r.ColumnID)
	k = binary.BigEndian.AppendUint64(k, uint64(r.Time.UnixNano()))
	k = binary.BigEndian.AppendUint64(k, uint64(r.UserID))
	return append(k, r.EventType...)
}

func recordPrefix(sheetID, rowID, columnID int64) []byte {
	k := make([]byte, 0, 48)
	k = binary.BigEndian.AppendUint64(k, uint64(sheetID))
	k = binary.BigEndian.AppendUint64(k, uint64(rowID))
	return binary.BigEndian.AppendUint64(k, uint64(columnID))
}

// PutRecords stores attribution records (idempotently), raises the newest
// record time of their sheets (see NewestRecord) and drops the records of
// the same cells older than RecordTTL.
func (s *Store) PutRecords(_ context.Context, recs []webhook.Record) error {
	cutoff := s.now().Add(-RecordTTL)
	return s.db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketWebhookRecords)
		if err != nil {
			return err
		}
		nb, err := tx.CreateBucketIfNotExists(bucketWebhookNewest)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if v := nb.Get(idKey(r.SheetID)); len(v) != 8 || int64(binary.BigEndian.Uint64(v)) < r.Time.UnixNano() {
				if err := nb.Put(idKey(r.SheetID), binary.BigEndian.AppendUint64(nil, uint64(r.Time.UnixNano()))); err != nil {
					return err
				}
			}
			v, err := json.Marshal(r)
			if err != nil {
				return err
			}
			c := b.Cursor()
			p := recordPrefix(r.SheetID, r.RowID, r.ColumnID)
			for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
				if len(k) < 32 || time.Unix(0, int64(binary.BigEndian.Uint64(k[24:32]))).After(cutoff) {
					break
				}
				if err := c.Delete(); err != nil {
					return err
				}
			}
			if err := b.Put(recordKey(r), v); err != nil {
				return err
			}
		}
		return nil
	})
}

// NewestRecord returns the time of the newest record PutRecords stored for
// the sheet; ok is false when it stored none.
func (s *Store) NewestRecord(_ context.Context, sheetID int64) (time.Time, bool, error) {
	var t time.Time
	var ok bool
	err := s.db.View(func(tx *bbolt.Tx) error {
		if b := tx.Bucket(bucketWebhookNewest); b != nil {
			if v := b.Get(idKey(sheetID)); len(v) == 8 {
				t, ok = time.Unix(0, int64(binary.BigEndian.Uint64(v))).UTC(), true
			}
		}
		return nil
	})
	if err != nil {
		return time.Time{}, false, fmt.Errorf("read newest webhook record time of sheet %d: %w", sheetID, err)
	}
	return t, ok, nil
}

// Records returns the records of one cell (columnID 0: the row's) with
// from < Time ≤ to; a zero bound is open.
func (s *Store) Records(_ context.Context, sheetID, rowID, columnID int64, from, to time.Time) ([]webhook.Record, error) {
	var out []webhook.Record
	err := s.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketWebhookRecords)
		if b == nil {
			return nil
		}
		p := recordPrefix(sheetID, rowID, columnID)
		c := b.Cursor()
		for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			var r webhook.Record
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			if (!from.IsZero() && !r.Time.After(from)) || (!to.IsZero() && r.Time.After(to)) {
				continue
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read webhook records of sheet %d row %d: %w", sheetID, rowID, err)
	}
	return out, nil
}

// update runs fn on the bucket, created when missing, in one transaction.
func (s *Store) update(name []byte, fn func(*bbolt.Bucket) error) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(name)
		if err != nil {
			return err
		}
		return fn(b)
	})
}

package bolt

import (
	"context"
	"fmt"
	"time"

	"github.com/fieldaudit/billing-audit/shared/pipeline"
	bbolt "go.etcd.io/bbolt"
)

// bucketAlerts holds one nested bucket per alert channel: change id → the
// time (RFC 3339, UTC) the channel delivered its alert.
var bucketAlerts = []byte("alerts")

var _ pipeline.AlertLog = (*Store)(nil)

// AlertsSent returns those of ids whose alert channel delivered.
func (s *Store) AlertsSent(_ context.Context, channel string, ids []string) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	err := s.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketAlerts)
		if b = nestedBucket(b, channel); b == nil {
			return nil
		}
		for _, id := range ids {
			v := b.Get([]byte(id))
			if v == nil {
				continue
			}
			t, err := time.Parse(time.RFC3339Nano, string(v))
			if err != nil {
				return fmt.Errorf("change %s: %w", id, err)
			}
			out[id] = t
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read alerts sent on channel %s: %w", channel, err)
	}
	return out, nil
}

// MarkAlertsSent records ids as delivered by channel at at, keeping an
// earlier record.
func (s *Store) MarkAlertsSent(_ context.Context, channel string, ids []string, at time.Time) error {
	err := s.db.Update(func(tx *bbolt.Tx) error {
		top, err := tx.CreateBucketIfNotExists(bucketAlerts)
		if err != nil {
			return err
		}
		b, err := top.CreateBucketIfNotExists([]byte(channel))
		if err != nil {
			return err
		}
		v := []byte(at.UTC().Format(time.RFC3339Nano))
		for _, id := range ids {
			if b.Get([]byte(id)) != nil {
				continue
			}
			if err := b.Put([]byte(id), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mark %d alert(s) sent on channel %s: %w", len(ids), channel, err)
	}
	return nil
}

func nestedBucket(b *bbolt.Bucket, name string) *bbolt.Bucket {
	if b == nil {
		return nil
	}
	return b.Bucket([]byte(name))
}

package webhook

import (
	"context"
	"time"
)

// SecretSet is what we keep of one webhook's shared secret: the current one
// and, for a while after a rotation, the previous one, so callbacks signed
// before the rotation (in flight, or retried) are still accepted; and the
// sheet the webhook was registered for, so a callback signed with its secret
// can speak only for that sheet.
type SecretSet struct {
	Current       string    `json:"current"`
	Previous      string    `json:"previous,omitempty"`
	PreviousUntil time.Time `json:"previousUntil,omitzero"`
	// SheetID is the webhook's scopeObjectId at registration. 0 in sets
	// stored before it was recorded: EnsureWebhooks records it on its next
	// run, and until then the receiver cannot check it.
	SheetID int64 `json:"sheetId,omitempty"`
}

// Active returns the secrets valid at now: the current one, then the
// previous one until PreviousUntil.
func (s SecretSet) Active(now time.Time) []string {
	out := []string{s.Current}
	if s.Previous != "" && now.Before(s.PreviousUntil) {
		out = append(out, s.Previous)
	}
	return out
}

// SecretSource reads the stored secret set of a webhook; ok=false: not ours.
type SecretSource interface {
	SecretSet(ctx context.Context, webhookID int64) (set SecretSet, ok bool, err error)
}

// StoredSecrets adapts a SecretSource to [Secrets]: the active secrets of a
// stored set at clock's time (nil clock: time.Now) and its sheet.
func StoredSecrets(src SecretSource, clock func() time.Time) Secrets {
	if clock == nil {
		clock = time.Now
	}
	return storedSecrets{src, clock}
}

type storedSecrets struct {
	src   SecretSource
	clock func() time.Time
}

func (s storedSecrets) Secrets(ctx context.Context, webhookID int64) (Hook, bool, error) {
	set, ok, err := s.src.SecretSet(ctx, webhookID)
	if err != nil || !ok || set.Current == "" {
		return Hook{}, false, err
	}
	return Hook{Secrets: set.Active(s.clock()), SheetID: set.SheetID}, true, nil
}

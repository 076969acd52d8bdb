package webhook

import (
	"context"
	"sync"
	"time"
)

// CachedUsers remembers what users answered for ttl (resolved ids only;
// failures are asked again). Safe for concurrent use.
func CachedUsers(users Users, ttl time.Duration) Users {
	return &userCache{users: users, ttl: ttl, m: map[int64]cachedUser{}}
}

type cachedUser struct {
	email, name string
	at          time.Time
}

type userCache struct {
	users Users
	ttl   time.Duration
	mu    sync.Mutex
	m     map[int64]cachedUser
}

// maxCachedUsers bounds the cache of a long-lived process.
const maxCachedUsers = 10000

func (c *userCache) User(ctx context.Context, id int64) (string, string, error) {
	c.mu.Lock()
	u, ok := c.m[id]
	c.mu.Unlock()
	if ok && time.Since(u.at) < c.ttl {
		return u.email, u.name, nil
	}
	email, name, err := c.users.User(ctx, id)
	if err != nil {
		return "", "", err
	}
	c.mu.Lock()
	if len(c.m) >= maxCachedUsers {
		clear(c.m)
	}
	c.m[id] = cachedUser{email: email, name: name, at: time.Now()}
	c.mu.Unlock()
	return email, name, nil
}

// ResolvingLookup wraps a RecordLookup so the records it returns carry the
// user's email and name (ResolveUsers through users): the receiver stores
// only user ids, and attribution resolves them. A user that cannot be
// resolved leaves its records with the id only (the Attributor names them
// "Smartsheet user <id>"), never failing the lookup.
// It keeps lookup's NewestRecord when lookup is a [NewestRecordLookup].
func ResolvingLookup(lookup RecordLookup, users Users) RecordLookup {
	if nl, ok := lookup.(NewestRecordLookup); ok {
		return resolvingNewestLookup{resolvingLookup{lookup, users}, nl}
	}
	return resolvingLookup{lookup, users}
}

type resolvingLookup struct {
	lookup RecordLookup
	users  Users
}

type resolvingNewestLookup struct {
	resolvingLookup
	newest NewestRecordLookup
}

func (r resolvingNewestLookup) NewestRecord(ctx context.Context, sheetID int64) (time.Time, bool, error) {
	return r.newest.NewestRecord(ctx, sheetID)
}

func (r resolvingLookup) Records(ctx context.Context, sheetID, rowID, columnID int64, from, to time.Time) ([]Record, error) {
	recs, err := r.lookup.Records(ctx, sheetID, rowID, columnID, from, to)
	if err != nil || len(recs) == 0 {
		return recs, err
	}
	if err := ResolveUsers(ctx, r.users, recs); err != nil && ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return recs, nil
}

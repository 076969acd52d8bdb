package pipeline

import (
	"context"
	"testing"
	"time"
)

// withDeadline is a context whose deadline is d from now (none when d is 0),
// cancelled when the test ends.
func withDeadline(t *testing.T, d time.Duration) context.Context {
	if d == 0 {
		return context.Background()
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestLeaseDeadline(t *testing.T) {
	tests := []struct {
		name     string
		deadline time.Duration // from now; 0: none
		wait     time.Duration
		want     time.Duration // from now
	}{
		{name: "no deadline", wait: 2 * time.Minute, want: 2 * time.Minute},
		{name: "deadline far off", deadline: 15 * time.Minute, wait: 2 * time.Minute, want: 2 * time.Minute},
		{name: "deadline near: stop with time to say so", deadline: time.Minute, wait: 2 * time.Minute, want: time.Minute - leaseMargin},
		{name: "deadline nearer than the margin", deadline: 5 * time.Second, wait: 2 * time.Minute, want: 5*time.Second - leaseMargin},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := withDeadline(t, tt.deadline)
			start := time.Now()
			got := leaseDeadline(ctx, tt.wait).Sub(start)
			// time passes between start and the call: allow a second.
			if got < tt.want-time.Second || got > tt.want+time.Second {
				t.Errorf("leaseDeadline() = now%+v, want now%+v", got, tt.want)
			}
		})
	}
}

func TestLeaseTTL(t *testing.T) {
	tests := []struct {
		name     string
		deadline time.Duration // from now; 0: none
		want     time.Duration
	}{
		{name: "no deadline (the CLI)", want: auditLogLeaseTTL},
		{name: "deadline past the longest lease", deadline: time.Hour, want: auditLogLeaseTTL},
		{name: "a Lambda invocation's deadline", deadline: 2 * time.Minute, want: 2*time.Minute + leaseAfterDeadline},
		{name: "deadline passed: never less than the margin", deadline: time.Nanosecond, want: leaseAfterDeadline},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := withDeadline(t, tt.deadline)
			time.Sleep(time.Millisecond) // the nanosecond case: past
			if got := leaseTTL(ctx); got < tt.want-time.Second || got > tt.want {
				t.Errorf("leaseTTL() = %v, want %v (within a second)", got, tt.want)
			}
		})
	}
}

// TestAuditLogLeaseEndsWithItsHolder: a writer with a deadline (a Lambda
// invocation) takes and renews the audit-log lease only until shortly past
// it, so one killed mid-write keeps the others out for about its timeout;
// the lease still outlasts the deadline, when Lambda has stopped it.
func TestAuditLogLeaseEndsWithItsHolder(t *testing.T) {
	f := newFixture(t)
	var ttls []time.Duration
	acquire, renew := f.store.AcquireLeaseFunc, f.store.RenewLeaseFunc
	f.store.AcquireLeaseFunc = func(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
		if name == AuditLogLease {
			ttls = append(ttls, ttl)
		}
		return acquire(ctx, name, holder, ttl)
	}
	f.store.RenewLeaseFunc = func(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
		if name == AuditLogLease {
			ttls = append(ttls, ttl)
		}
		return renew(ctx, name, holder, ttl)
	}
	r := f.runner(t)
	lctx, release, err := r.lockAuditLog(withDeadline(t, 2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.renewLease(lctx); err != nil {
		t.Fatal(err)
	}
	release()
	if len(ttls) != 2 {
		t.Fatalf("audit-log lease taken and renewed %d times, want 2", len(ttls))
	}
	for i, ttl := range ttls {
		if ttl > 2*time.Minute+leaseAfterDeadline || ttl < 2*time.Minute {
			t.Errorf("lease %d for %v, want about the deadline (2m) + %v", i, ttl, leaseAfterDeadline)
		}
	}
}

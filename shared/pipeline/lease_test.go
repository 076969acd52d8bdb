package pipeline

import (
	"context"
	"testing"
	"time"
)

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
			ctx := context.Background()
			if tt.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.deadline)
				defer cancel()
			}
			start := time.Now()
			got := leaseDeadline(ctx, tt.wait).Sub(start)
			// time passes between start and the call: allow a second.
			if got < tt.want-time.Second || got > tt.want+time.Second {
				t.Errorf("leaseDeadline() = now%+v, want now%+v", got, tt.want)
			}
		})
	}
}

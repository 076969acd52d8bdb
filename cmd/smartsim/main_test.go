package main

import (
	"testing"
	"time"

	"github.com/fieldaudit/billing-audit/shared/local/smartsim"
)

func TestLatencyOf(t *testing.T) {
	tests := []struct {
		name    string
		base    time.Duration
		perRow  time.Duration
		jitter  float64
		want    smartsim.Latency
		wantErr bool
	}{
		{name: "default: none"},
		{name: "suggested", base: 400 * time.Millisecond, perRow: time.Millisecond, jitter: 0.3,
			want: smartsim.Latency{Base: 400 * time.Millisecond, PerRow: time.Millisecond, Jitter: 0.3}},
		{name: "negative latency", base: -time.Millisecond, wantErr: true},
		{name: "negative per row", perRow: -time.Millisecond, wantErr: true},
		{name: "jitter above 1", jitter: 1.5, wantErr: true},
		{name: "negative jitter", jitter: -0.1, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := latencyOf(tt.base, tt.perRow, tt.jitter)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("latencyOf(%v, %v, %v) = %+v, %v, want %+v, error %v", tt.base, tt.perRow, tt.jitter, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

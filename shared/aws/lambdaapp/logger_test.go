package lambdaapp

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/fieldaudit/billing-audit/shared/config"
	"github.com/google/go-cmp/cmp"
)

func env(m map[string]string) config.Getenv { return func(k string) string { return m[k] } }

// lines are the JSON log lines in buf, each as its keys and values.
func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(buf)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// LOG_LEVEL, read as config.LoadFunction reads it, decides whether a Debug
// line is written; every line carries the request id.
func TestLoggerLevel(t *testing.T) {
	tests := []struct {
		name     string
		logLevel string
		want     []string // the messages written
	}{
		{name: "DEBUG, as template.yaml sets it in dev", logLevel: "DEBUG", want: []string{"page read", "scan queued", "batch refused"}},
		{name: "debug, as the old code wanted it", logLevel: "debug", want: []string{"page read", "scan queued", "batch refused"}},
		{name: "INFO, as template.yaml sets it in prod", logLevel: "INFO", want: []string{"scan queued", "batch refused"}},
		{name: "unset is INFO", logLevel: "", want: []string{"scan queued", "batch refused"}},
		{name: "ERROR", logLevel: "error", want: []string{"batch refused"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.LoadFunction(env(map[string]string{config.EnvLogLevel: tt.logLevel}))
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			log := NewLogger(&buf, cfg.LogLevel)
			ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "8476a536-e9f4-11e8-9739-2dfe598c3fcd"})
			log.DebugContext(ctx, "page read", "sheet", int64(4583173393803140))
			log.InfoContext(ctx, "scan queued", "run", "r1")
			log.ErrorContext(ctx, "batch refused", "alert", "BATCH_REFUSED")

			var got []string
			for _, l := range lines(t, &buf) {
				got = append(got, l["message"].(string))
				if l["requestId"] != "8476a536-e9f4-11e8-9739-2dfe598c3fcd" || l["timestamp"] == nil || l["level"] == nil {
					t.Errorf("log line %v lacks the request id, Lambda's timestamp or the level", l)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("LOG_LEVEL=%q: lines written mismatch (-want +got):\n%s", tt.logLevel, diff)
			}
		})
	}
}

// Loggers derived with attributes still carry the request id; outside an
// invocation there is none.
func TestLoggerDerived(t *testing.T) {
	var buf bytes.Buffer
	log := NewLogger(&buf, config.Function{}.LogLevel)
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "req-1"})
	log.With("component", "smartsheet").InfoContext(ctx, "retry")
	log.With("batch", "r1/0001").InfoContext(ctx, "analysed", "rows", 3)
	log.Info("cold start")
	got := lines(t, &buf)
	if len(got) != 3 || got[0]["requestId"] != "req-1" || got[0]["component"] != "smartsheet" || got[1]["requestId"] != "req-1" || got[1]["batch"] != "r1/0001" {
		t.Errorf("derived loggers wrote %v, want both lines with requestId req-1", got)
	}
	if _, ok := got[2]["requestId"]; ok {
		t.Errorf("a line without an invocation = %v, want no requestId", got[2])
	}
}

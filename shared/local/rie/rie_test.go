package rie_test

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldaudit/billing-audit/shared/local/rie"
)

// MustEcho builds the test function and starts it under the emulator, installing the emulator when missing.
func MustEcho(tb testing.TB) *rie.Function {
	tb.Helper()
	ctx := context.Background()
	emu, err := rie.Ensure(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	bin := filepath.Join(tb.TempDir(), "bootstrap")
	build := exec.Command("go", "build", "-tags", "lambda.norpc", "-o", bin, "./testdata/echo")
	if out, err := build.CombinedOutput(); err != nil {
		tb.Fatalf("build echo: %v\n%s", err, out)
	}
	f, err := rie.Start(ctx, rie.Config{Name: "echo", Bootstrap: bin, Emulator: emu, Timeout: 5 * time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(f.Stop)
	return f
}

func TestInvokeKillRestart(t *testing.T) {
	f := MustEcho(t)
	ctx := context.Background()
	got, err := f.Invoke(ctx, []byte(`{"echo":"hi"}`))
	if err != nil || string(got) != `{"echo":"hi"}` {
		t.Fatalf("Invoke(echo) = %s, %v, want {\"echo\":\"hi\"}", got, err)
	}
	if rss, err := f.PeakRSS(); err != nil || rss < 1<<20 {
		t.Errorf("PeakRSS() = %d, %v, want the bootstrap's VmHWM", rss, err)
	}

	_, err = f.Invoke(ctx, []byte(`{"fail":true}`))
	var fe *rie.FunctionError
	if !errors.As(err, &fe) || fe.Message != "asked to fail" {
		t.Errorf("Invoke(fail) error = %v, want a FunctionError", err)
	}

	// Killed mid-invoke: the caller sees a transport error; a restart is a fresh cold start.
	off := f.LogLen()
	done := make(chan error, 1)
	go func() { _, err := f.Invoke(ctx, []byte(`{"echo":"slow","sleepMs":5000}`)); done <- err }()
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := f.WaitLog(wctx, off, "working"); err != nil {
		t.Fatal(err)
	}
	f.Kill()
	if err := <-done; err == nil || errors.As(err, &fe) {
		t.Errorf("Invoke during Kill error = %v, want a transport error", err)
	}
	if err := f.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := f.Invoke(ctx, []byte(`{"echo":"again"}`)); err != nil || !strings.Contains(string(got), "again") {
		t.Errorf("Invoke after Restart = %s, %v", got, err)
	}
	if strings.Contains(f.Logs(), "failed to POST") {
		t.Errorf("the killed bootstrap lived on:\n%s", f.Logs())
	}
}

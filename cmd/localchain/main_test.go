package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fieldaudit/billing-audit/shared/local/localstack"
)

// TestLocalChain runs `make local-chain` as a user would: the whole product on
// moto, the simulator and the real bootstraps, from a baseline to the workbook.
func TestLocalChain(t *testing.T) {
	if testing.Short() {
		t.Skip("the local chain: not in -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var out bytes.Buffer
	err := run(ctx, []string{"-root", "../.."}, &out)
	if errors.Is(err, localstack.ErrNoMoto) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatalf("local chain: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"webhooks registered with the simulator: 3",
		"through the webhooks alone: 10 audit rows",
		"audit rows now: 10 (the scenario made 10 changes",
		".xlsx",
		"digests/public-key.pem",
		"kim.lee@fieldops.example.com (webhook)", // the edits are attributed by their callbacks
		"events/webhook/challenge.json",          // every sample was played
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

package localchain_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/aws/dynamo"
	"github.com/fieldaudit/billing-audit/shared/local/chaos"
	"github.com/fieldaudit/billing-audit/shared/local/localchain"
	"github.com/fieldaudit/billing-audit/shared/local/smartsim"
	"github.com/fieldaudit/billing-audit/shared/local/smartsimtest"
	"github.com/fieldaudit/billing-audit/shared/local/soak"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// chainFaultKinds are the Smartsheet faults of the chain stage: those the functions retry within a second or two.
// A 429 (20 s backoff), a 4001 maintenance (1 min) and a hung call (the functions' 2 min HTTP timeout) cost the
// functions real time; the in-process soak, whose client does not sleep, plays them.
var chainFaultKinds = []smartsim.FaultKind{smartsim.FaultUnexpected, smartsim.FaultServerTimeout, smartsim.Fault500,
	smartsim.Fault502, smartsim.Fault503, smartsim.FaultLostResponse}

// soakChainConfig sizes the chain stage of the soak.
type soakChainConfig struct {
	game soak.Config
	// dynamoFaults is the share of the functions' DynamoDB requests the proxy faults.
	dynamoFaults float64
	// killRate is the share of rounds in which the analyze function is killed mid-batch.
	killRate float64
	// attempts is how many scans a round may take before one run completes.
	attempts int
}

// soakChainResult is what the chain stage did, beside the game's result.
type soakChainResult struct {
	soak.Result
	scans, failedScans    int
	dynamoCalls           int
	dynamoFaults          map[chaos.Kind]int
	sqsDuplicates         int
	kills                 int
	unreadable            int // sheets a completed run could not read (audited by the next run)
	invocations, failures int
}

func (r soakChainResult) line() string {
	var faults []string
	for k, v := range r.FaultsByKind {
		faults = append(faults, fmt.Sprintf("%s:%d", k, v))
	}
	sort.Strings(faults)
	var dyn []string
	total := 0
	for k, v := range r.dynamoFaults {
		dyn = append(dyn, fmt.Sprintf("%s:%d", k, v))
		total += v
	}
	sort.Strings(dyn)
	pct := func(a, b int64) float64 {
		if b == 0 {
			return 0
		}
		return 100 * float64(a) / float64(b)
	}
	verify := "ok"
	if !r.VerifyOK {
		verify = "FAILED"
	}
	return fmt.Sprintf("soak-chain: seed=%d rounds=%d edits=%d expected_changes=%d audit_rows=%d scans=%d failed_scans=%d "+
		"smartsheet_calls=%d faulted=%d faulted_pct=%.1f faults=%s dynamodb_calls=%d dynamodb_faults=%d dynamodb_faulted_pct=%.1f (%s) "+
		"sqs_duplicates=%d analyze_invocations=%d failed_invocations=%d kills=%d sheets_unreadable=%d attributed=%d misattributed=%d "+
		"masked_writer_info=%d wrong_impact=%d unexpected=%d lost=%d duplicated=%d deleted=%d verify=%s elapsed=%s",
		r.Seed, r.Rounds, r.Edits, r.Expected, r.AuditRows, r.scans, r.failedScans,
		r.Calls, r.Faulted, pct(r.Faulted, r.Calls), strings.Join(faults, ","), r.dynamoCalls, total, pct(int64(total), int64(r.dynamoCalls)), strings.Join(dyn, ","),
		r.sqsDuplicates, r.invocations, r.failures, r.kills, r.unreadable, r.Attributed, r.Misattributed,
		r.MaskedWriterInfo, r.WrongImpact, r.Unexpected, r.Lost, r.Duplicated, r.Deleted, verify, r.Elapsed.Round(time.Second))
}

// TestSoakChain is the chaos soak's chain stage (issue 14): the soak's generator and oracle (shared/local/soak) with
// the serverless chain in between — the scan, analyze and report bootstraps under the runtime emulator, moto with
// template.yaml deployed, the SQS mappings played with every message delivered twice and out of order, the analyze
// function killed mid-batch in some rounds, a share of the Smartsheet calls and of the functions' DynamoDB requests
// (throttled, server errors, lost answers, transaction conflicts) faulted. Each round scans and drains until a run
// completes, then the oracle checks the audit sheet: every expected change exactly once with its values, impact and
// author, nothing else, no audit row deleted, and Verify (over the table directly) passing.
//
// Without SOAK_ROUNDS it is the short form `make test` runs; `make soak-chain` sets SOAK_ROUNDS, SOAK_EDITS,
// SOAK_SEED, SOAK_SHEETS, SOAK_ROWS, SOAK_FAULT_RATE, SOAK_DYNAMODB_FAULT_RATE and SOAK_KILL_RATE.
func TestSoakChain(t *testing.T) {
	if testing.Short() {
		t.Skip("the chain: not in -short")
	}
	cfg := soakChainConfig{
		game: soak.Config{Seed: 1, Rounds: 2, EditsPerRound: 25, Sheets: 2, Rows: 40, Weeks: 4, FaultRate: 0.3},
		// Every round kills in the short form, so that it always plays a kill.
		dynamoFaults: 0.1, killRate: 1, attempts: 8,
	}
	if os.Getenv("SOAK_ROUNDS") != "" {
		cfg.game = soak.Config{
			Seed: uint64(soakEnvInt(t, "SOAK_SEED", 1)), Rounds: soakEnvInt(t, "SOAK_ROUNDS", 20), EditsPerRound: soakEnvInt(t, "SOAK_EDITS", 100),
			Sheets: soakEnvInt(t, "SOAK_SHEETS", 3), Rows: soakEnvInt(t, "SOAK_ROWS", 150), Weeks: 6, FaultRate: soakEnvRate(t, "SOAK_FAULT_RATE", 0.3),
		}
		cfg.dynamoFaults = soakEnvRate(t, "SOAK_DYNAMODB_FAULT_RATE", 0.1)
		cfg.killRate = soakEnvRate(t, "SOAK_KILL_RATE", 0.5)
	}
	res := runSoakChain(t, cfg)
	t.Log(res.line())
	if res.Expected == 0 || res.Faulted == 0 || res.sqsDuplicates == 0 || res.kills == 0 || len(res.dynamoFaults) == 0 {
		t.Errorf("the chain soak did too little: %s", res.line())
	}
}

func runSoakChain(t *testing.T, cfg soakChainConfig) soakChainResult {
	t.Helper()
	began := time.Now()
	stack := MustStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Hour)
	defer cancel()
	awsCfg, err := localchain.AWSConfig(ctx, stack.vars)
	if err != nil {
		t.Fatal(err)
	}
	// The oracle's store reaches the table directly; the functions go through the faulty proxy.
	store := dynamo.New(dynamodb.NewFromConfig(awsCfg), stack.vars["AUDIT_TABLE"], dynamo.Options{})
	proxy, err := localchain.StartDynamoDBCounter(stack.vars["AWS_ENDPOINT_URL"], true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })

	// The simulator keeps real time: the functions' clock is the machine's.
	cfg.game.RealTime = true
	srv := smartsimtest.Start(t, smartsim.Options{Seed: cfg.game.Seed, Limits: smartsim.Limits{Disabled: true}})
	game, err := soak.NewGame(srv, cfg.game)
	if err != nil {
		t.Fatal(err)
	}
	client := soakClient(t, srv)
	auditID, _, err := pipeline.EnsureAuditSheet(ctx, client, store, 0, auditName)
	if err != nil {
		t.Fatal(err)
	}
	game.SetAuditSheet(auditID)

	if err := localchain.PutToken(ctx, secretsmanager.NewFromConfig(awsCfg), stack.vars["SMARTSHEET_TOKEN_SECRET_ARN"], token); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{}
	for k, v := range stack.vars {
		vars[k] = v
	}
	vars["SMARTSHEET_BASE_URL"] = srv.URL()
	vars["AUDIT_SHEET_ID"] = strconv.FormatInt(auditID, 10)
	vars["SOURCE_FOLDER_IDS"] = strconv.FormatInt(game.FolderID(), 10)
	vars["SOURCE_SHEET_IDS"] = ""
	vars["AWS_ENDPOINT_URL_DYNAMODB"] = proxy.URL()
	var out bytes.Buffer
	logs := &lockedWriter{w: &out}
	chain, err := localchain.Start(ctx, localchain.Options{Env: vars, Bootstraps: stack.bootstrap, Emulator: stack.emulator,
		Log: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(chain.Stop)
	t.Cleanup(func() {
		if os.Getenv("SOAK_CHAIN_DEBUG") != "" {
			t.Logf("pollers:\n%s", out.String())
		}
		if t.Failed() {
			t.Logf("pollers:\n%s\nscan:\n%s\nanalyze:\n%s\nreport:\n%s", tail(out.String()), tail(chain.Scan.Logs()), tail(chain.Analyze.Logs()), tail(chain.Report.Logs()))
		}
	})
	schedule, err := os.ReadFile(filepath.Join(moduleRoot, "events/scan/schedule.json"))
	if err != nil {
		t.Fatal(err)
	}

	// The chaos: every message twice and shuffled, Smartsheet and DynamoDB faults, kills.
	rng := rand.New(rand.NewPCG(cfg.game.Seed, 0xc4a1))
	chain.Analysis.Duplicate, chain.Reports.Duplicate = true, true
	chain.Analysis.Shuffle, chain.Reports.Shuffle = rand.New(rand.NewPCG(cfg.game.Seed, 1)), rand.New(rand.NewPCG(cfg.game.Seed, 2))
	srv.FaultRate(cfg.game.FaultRate, chainFaultKinds...)
	ddbFaults := proxy.Faults(cfg.dynamoFaults, cfg.game.Seed)
	k := &killer{fn: chain.Analyze, rng: rand.New(rand.NewPCG(cfg.game.Seed, 3))}
	chain.Analysis.BeforeInvoke = k.beforeInvoke
	analyze := &failCounter{fn: chain.Analyze}
	chain.Analysis.Function = analyze

	res := soakChainResult{}
	verify := func(ctx context.Context) (audit.Verification, error) {
		return soakVerify(ctx, client, store, game.FolderID(), auditID)
	}
	for n := 0; n <= cfg.game.Rounds; n++ {
		roundStart := time.Now()
		exp, err := game.Play(n)
		if err != nil {
			t.Fatal(err)
		}
		k.arm(n > 0 && rng.Float64() < cfg.killRate)
		done := false
		var lastErr error
		for attempt := 0; attempt < cfg.attempts && !done; attempt++ {
			res.scans++
			runID, err := invokeScan(ctx, chain, schedule)
			if err == nil {
				err = drainChain(ctx, chain, &res)
			}
			if err == nil {
				rec, ok, rerr := store.Run(ctx, runID)
				switch {
				case rerr != nil:
					err = rerr
				case !ok || rec.FinishedAt.IsZero():
					err = fmt.Errorf("run %s did not complete", runID)
				case unreadable(rec) > 0:
					// A sheet the faults kept from being read is a finding of the run, audited again by the
					// next one from its last complete scan: the round is not over.
					res.unreadable += unreadable(rec)
					err = fmt.Errorf("run %s completed with %d sheets unreadable", runID, unreadable(rec))
				default:
					done = true
				}
			}
			game.CountRun(!done)
			if !done {
				res.failedScans++
				lastErr = err
				t.Logf("soak-chain: round %d: scan %d: %v (scan again)", n, attempt+1, err)
			}
		}
		if err := k.wait(); err != nil {
			t.Fatalf("round %d: kill the analyze function: %v", n, err)
		}
		if !done {
			t.Fatalf("round %d: no run completed in %d scans: %v", n, cfg.attempts, lastErr)
		}
		if err := game.Check(ctx, n, exp, verify); err != nil {
			t.Fatal(err)
		}
		g := game.Result()
		t.Logf("soak-chain: round %d: %d edits, %d changes expected, %d audit rows, %d scans (%d failed), %d kills, %d problems, %s",
			n, g.Edits, len(exp), g.AuditRows, res.scans, res.failedScans, k.count(), len(g.Problems), time.Since(roundStart).Round(time.Millisecond))
		if len(g.Problems) > 0 {
			break // the round is named; later rounds would repeat it
		}
	}
	res.Result = game.Result()
	res.Elapsed = time.Since(began)
	res.dynamoCalls, res.dynamoFaults = ddbFaults.Counts()
	res.kills = k.count()
	res.invocations, res.failures = analyze.counts()
	for _, p := range res.Problems {
		t.Error(p)
	}
	for _, p := range res.Masked {
		t.Logf("known gap (writer info names a masked save): %s", p)
	}
	if !res.OK() {
		t.Errorf("the chain soak found problems: %s", res.line())
	}
	return res
}

// soakClient is a client of the simulator for the oracle's setup and Verify: its backoff does not sleep, as the
// faults are drawn per call.
func soakClient(tb testing.TB, srv *smartsim.Server) *smartsheet.Client {
	tb.Helper()
	c, err := smartsheet.New(smartsheet.Config{BaseURL: srv.URL(), Token: token, ChangeAgent: "billing-audit-soak-chain",
		HTTPClient: &http.Client{Timeout: 30 * time.Second}, RetryBudget: time.Minute,
		RequestsPerMinute: 1 << 20, HistoryPerMinute: 1 << 20,
		Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() }})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// soakVerify runs the pipeline's Verify over the table (directly) and the simulator, again while faults stop it.
func soakVerify(ctx context.Context, client *smartsheet.Client, store *dynamo.Store, folderID, auditID int64) (audit.Verification, error) {
	r, err := pipeline.New(client, store, pipeline.Options{Audit: audit.DefaultConfig(), SourceFolderIDs: []int64{folderID},
		AuditSheetID: auditID, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return audit.Verification{}, err
	}
	var last error
	for range 10 {
		v, err := r.Verify(ctx)
		if err == nil {
			return v, nil
		}
		last = err
	}
	return audit.Verification{}, last
}

// unreadable counts the sheets a run could not read (FindingSheetUnreadable).
func unreadable(rec pipeline.RunRecord) int {
	n := 0
	for _, f := range rec.Findings {
		if f.Kind == audit.FindingSheetUnreadable {
			n++
		}
	}
	return n
}

// invokeScan invokes the scan function and returns its run id.
func invokeScan(ctx context.Context, c *localchain.Chain, payload []byte) (string, error) {
	out, err := c.InvokeScan(ctx, payload)
	if err != nil {
		return "", fmt.Errorf("invoke scan: %w", err)
	}
	var r scanResponse
	if err := json.Unmarshal(out, &r); err != nil || r.RunID == "" {
		return "", fmt.Errorf("scan answered %s (%v), want a run id", out, err)
	}
	return r.RunID, nil
}

// drainChain drains the analysis and report queues, counting what the pollers did.
func drainChain(ctx context.Context, c *localchain.Chain, res *soakChainResult) error {
	for {
		a, err := c.Analysis.Drain(ctx)
		res.sqsDuplicates += a.Duplicated
		if err != nil {
			return err
		}
		r, err := c.Reports.Drain(ctx)
		res.sqsDuplicates += r.Duplicated
		if err != nil {
			return err
		}
		n, err := c.Analysis.Pending(ctx)
		if err != nil {
			return err
		}
		if n == 0 && r.Received == 0 {
			return nil
		}
	}
}

// failCounter counts the invocations of a function and those that failed (a function error, or the environment
// killed under them).
type failCounter struct {
	fn localchain.Invoker

	mu            sync.Mutex
	calls, failed int
}

func (f *failCounter) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	out, err := f.fn.Invoke(ctx, payload)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if err != nil {
		f.failed++
	}
	return out, err
}

func (f *failCounter) counts() (calls, failed int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls, f.failed
}

// killer kills the analyze function once in an armed round, a random moment into an invocation, and restarts it
// before the next one.
type killer struct {
	fn interface {
		Kill()
		Restart(context.Context) error
	}
	rng *rand.Rand

	mu     sync.Mutex
	armed  bool
	kills  int
	err    error
	active sync.WaitGroup
}

func (k *killer) arm(on bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.armed = on
}

func (k *killer) count() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.kills
}

// wait waits for a kill in progress and returns the first restart error.
func (k *killer) wait() error {
	k.active.Wait()
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.err
}

// beforeInvoke is the analysis poller's hook: the function is back before each invocation, and an armed killer
// kills this one after 50 ms to 2 s, mid-batch (the functions wait out backoff between the faulted calls).
func (k *killer) beforeInvoke(ctx context.Context, ev events.SQSEvent) {
	k.active.Wait()
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.armed || len(ev.Records) == 0 || k.rng.IntN(2) == 0 {
		return
	}
	k.armed = false
	delay := time.Duration(50+k.rng.IntN(1950)) * time.Millisecond
	k.active.Add(1)
	go func() {
		defer k.active.Done()
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		k.fn.Kill()
		err := k.fn.Restart(ctx)
		k.mu.Lock()
		defer k.mu.Unlock()
		k.kills++
		if err != nil && k.err == nil {
			k.err = err
		}
	}()
}

func soakEnvInt(t *testing.T, name string, def int) int {
	t.Helper()
	n, err := soak.EnvInt(name, def)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func soakEnvRate(t *testing.T, name string, def float64) float64 {
	t.Helper()
	f, err := soak.EnvRate(name, def, true)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

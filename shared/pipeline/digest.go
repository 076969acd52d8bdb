package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// Signer signs digests: an Ed25519 key file locally (shared/digestfile), an
// asymmetric KMS key in AWS (shared/aws/kmssign).
type Signer interface {
	Sign(ctx context.Context, msg []byte) ([]byte, error)
	// Algorithm is audit.AlgEd25519 or audit.AlgECDSASHA256.
	Algorithm() string
	KeyID() string
	// PublicKeyPEM is the verifying key (PEM "PUBLIC KEY", PKIX): all a
	// third party needs to check a digest.
	PublicKeyPEM(ctx context.Context) ([]byte, error)
}

// DigestStore keeps signed digests where the product cannot rewrite them: a
// folder locally, an S3 bucket with Object Lock (compliance mode) in AWS.
type DigestStore interface {
	// Put stores a digest's bytes and signature under name; a name already
	// used is refused.
	Put(ctx context.Context, name string, digest, signature []byte) (location string, err error)
	// List returns the stored digests' names in order.
	List(ctx context.Context) ([]string, error)
	Get(ctx context.Context, name string) (digest, signature []byte, err error)
	// PutPublicKey stores the verifying key beside the digests.
	PutPublicKey(ctx context.Context, pem []byte) error
	// PublicKey reads it back (ok=false before the first digest).
	PublicKey(ctx context.Context) (pem []byte, ok bool, err error)
}

// DigestResult says what WriteDigest did.
type DigestResult struct {
	Name     string
	Location string
	Digest   audit.Digest
	// Withheld says why no digest was signed ("" when one was).
	Withheld string
}

// Attestation is the end of a run's record keeping: the audit log verified,
// and the digest signed over the ledger.
type Attestation struct {
	Verification audit.Verification
	Digest       DigestResult
	// Usage is the Smartsheet calls the attestation made (reading the
	// audit sheet back, the summary fields): the report adds them to the
	// run's, so the workbook's figures count every call of the run up to it.
	Usage *Usage `json:",omitempty"`
}

// Integrity is the attestation as the report shows it.
func (a Attestation) Integrity() *audit.Integrity {
	return &audit.Integrity{Verification: a.Verification, DigestName: a.Digest.Name,
		DigestLocation: a.Digest.Location, DigestWithheld: a.Digest.Withheld}
}

// Attest verifies the audit log and then signs the run's digest, under one
// hold of the audit-log lease, so the digest pins exactly the ledger that
// was verified. Test mode verifies and signs nothing.
func (r *Runner) Attest(ctx context.Context, run RunRecord) (a Attestation, err error) {
	ctx, release, err := r.lockAuditLog(ctx)
	if err != nil {
		return Attestation{}, fmt.Errorf("attest run %s: %w", run.RunID, err)
	}
	defer release()
	before := r.stats()
	defer func() { a.Usage = r.usageSince(before) }()
	if a.Verification, err = r.verify(ctx, false); err != nil {
		return a, fmt.Errorf("attest run %s: %w", run.RunID, err)
	}
	if !a.Verification.OK() {
		r.log.ErrorContext(ctx, "audit log verification failed", slog.String("alert", TamperAlert),
			slog.String("run", run.RunID), slog.Int("problems", a.Verification.Total()), slog.String("summary", a.Verification.Summary()))
	}
	if run.TestMode || r.opts.TestMode {
		a.Digest.Withheld = "test mode"
		return a, nil
	}
	if err := r.recordReviews(ctx, &a.Verification); err != nil {
		return a, fmt.Errorf("attest run %s: %w", run.RunID, err)
	}
	if a.Digest, err = r.writeDigest(ctx, run, a.Verification); err != nil {
		return a, fmt.Errorf("attest run %s: %w", run.RunID, err)
	}
	if r.opts.AuditSheetID != 0 {
		if err := r.updateSummary(ctx, a.summaryValues(r.opts.Audit.Location)); err != nil {
			return a, fmt.Errorf("attest run %s: %w", run.RunID, err)
		}
	}
	return a, nil
}

// summaryValues are the audit sheet's integrity summary fields: what the
// verification found, when, the ledger's head and the last digest.
func (a Attestation) summaryValues(loc *time.Location) map[string]smartsheet.Value {
	v := a.Verification
	line := v.Summary()
	if !v.OK() {
		line += " — run `billing-audit verify` for the list"
	}
	if len(line) > 3900 {
		line = line[:3900] + "…"
	}
	ledger := "empty"
	if v.HeadSeq > 0 {
		ledger = fmt.Sprintf("entry %d, hash %s", v.HeadSeq, audit.ShortSeal(v.HeadHash))
	}
	digest := a.Digest.Name
	if digest == "" {
		digest = "none signed: " + a.Digest.Withheld
	} else if a.Digest.Location != "" {
		digest += " (" + a.Digest.Location + ")"
	}
	if loc == nil {
		loc = time.UTC
	}
	values := map[string]smartsheet.Value{
		SumIntegrity:  smartsheet.StringValue(line),
		SumVerifiedAt: smartsheet.StringValue(v.At.In(loc).Format(time.RFC3339)),
		SumDigest:     smartsheet.StringValue(digest),
	}
	// The Ledger Head witnesses the ledger's length: a ledger that failed
	// verification (one cut short, say) must not overwrite the witness.
	if v.LedgerOK() {
		values[SumLedger] = smartsheet.StringValue(ledger)
	}
	return values
}

// AttestOnce is Attest for a run that may already have been attested (a
// redelivered AuditRunCompleted, an on-demand re-publish): a run's
// attestation is kept in the store and reused, so a run gets one digest.
func (r *Runner) AttestOnce(ctx context.Context, run RunRecord) (Attestation, error) {
	key := "attestation:" + run.RunID
	if v, ok, err := r.store.Meta(ctx, key); err != nil {
		return Attestation{}, fmt.Errorf("read the attestation of run %s: %w", run.RunID, err)
	} else if ok {
		var a Attestation
		if err := json.Unmarshal([]byte(v), &a); err == nil {
			return a, nil
		}
	}
	a, err := r.Attest(ctx, run)
	if err != nil || run.TestMode || r.opts.TestMode {
		return a, err
	}
	kept := a
	// A store item holds a few hundred KB at most: keep the counts and the
	// first problems (verify lists them all).
	if len(kept.Verification.Problems) > 100 {
		kept.Verification.Problems = kept.Verification.Problems[:100]
	}
	b, err := json.Marshal(kept)
	if err != nil {
		return a, fmt.Errorf("encode the attestation of run %s: %w", run.RunID, err)
	}
	return a, wrapErr("keep the attestation of run "+run.RunID, r.store.PutMeta(ctx, key, string(b)))
}

// TamperAlert marks the log line of a failed verification (the alert
// attribute), which template.yaml's metric filter counts.
const TamperAlert = "AUDIT_LOG_TAMPERED"

// writeDigest signs and stores the digest of a run: the ledger's head, the
// run's figures and the previous digest's hash. A ledger whose own chain or
// digests failed verification gets no digest: signing it would vouch for
// what was tampered with. Its errors name the step and the digest.
func (r *Runner) writeDigest(ctx context.Context, run RunRecord, v audit.Verification) (DigestResult, error) {
	if r.opts.Signer == nil || r.opts.Digests == nil {
		return DigestResult{Withheld: "no signing key or digest store configured"}, nil
	}
	if !v.LedgerOK() {
		return DigestResult{Withheld: "the ledger failed verification: no digest is signed over it"}, nil
	}
	names, err := r.opts.Digests.List(ctx)
	if err != nil {
		return DigestResult{}, fmt.Errorf("list digests: %w", err)
	}
	d := audit.Digest{
		Version: audit.DigestVersion, Number: 1, RunID: run.RunID, CreatedAt: r.opts.Clock().UTC(),
		LastSeq: v.HeadSeq, HeadHash: v.HeadHash, RunChanges: run.Changes, AuditRows: v.Rows, Problems: v.Total(),
		Algorithm: r.opts.Signer.Algorithm(), KeyID: r.opts.Signer.KeyID(),
	}
	if len(names) > 0 {
		last := names[len(names)-1]
		data, _, err := r.opts.Digests.Get(ctx, last)
		if err != nil {
			return DigestResult{}, fmt.Errorf("read digest %s: %w", last, err)
		}
		prev, err := audit.ParseDigest(data)
		if err != nil {
			return DigestResult{}, fmt.Errorf("parse digest %s: %w", last, err)
		}
		if prev.RunID == run.RunID {
			// Signed already (its attestation was not kept): one per run.
			return DigestResult{Name: last, Digest: prev}, nil
		}
		d.Number, d.PreviousDigest = prev.Number+1, audit.HashBytes(data)
	}
	name := audit.DigestName(d.Number, run.RunID)
	data, err := d.Bytes()
	if err != nil {
		return DigestResult{}, fmt.Errorf("encode digest %s: %w", name, err)
	}
	sig, err := r.opts.Signer.Sign(ctx, data)
	if err != nil {
		return DigestResult{}, fmt.Errorf("sign digest %s with key %s: %w", name, d.KeyID, err)
	}
	pub, err := r.opts.Signer.PublicKeyPEM(ctx)
	if err != nil {
		return DigestResult{}, fmt.Errorf("read the public key of signing key %s: %w", d.KeyID, err)
	}
	// Never store a digest that would not verify.
	if err := audit.VerifySignature(pub, d.Algorithm, data, sig); err != nil {
		return DigestResult{}, fmt.Errorf("digest %s: the new signature does not verify: %w", name, err)
	}
	if err := r.opts.Digests.PutPublicKey(ctx, pub); err != nil {
		return DigestResult{}, fmt.Errorf("store the digest public key of key %s: %w", d.KeyID, err)
	}
	loc, err := r.opts.Digests.Put(ctx, name, data, sig)
	if err != nil {
		return DigestResult{}, fmt.Errorf("store digest %s: %w", name, err)
	}
	return DigestResult{Name: name, Location: loc, Digest: d}, nil
}

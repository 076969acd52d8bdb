package audit

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/shopspring/decimal"
)

var sealTime = time.Date(2026, 11, 25, 16, 0, 0, 0, time.UTC)

func sampleChange(id string, price string) Change {
	imp := decimal.RequireFromString(price).Sub(decimal.NewFromInt(650))
	at := time.Date(2026, 11, 24, 9, 30, 0, 0, time.UTC)
	return Change{
		ChangeID: id, RunID: "20261125T160000Z-abcdef", Kind: KindValueChanged, SheetID: 1, SheetName: "Crew A",
		RowID: 10, RowNumber: 3, Permalink: "https://app.smartsheet.com/b/home?lx=r10", WorkRequest: "91234567",
		WeekEnding: time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC), Column: "Units Total Price", ColumnKey: ColPrice,
		OldValue: "650", NewValue: price, Delta: &imp, Impact: imp, Risk: RiskHigh, Status: StatusUnauthorized,
		Attribution: Attribution{User: "kim@example.com", Time: &at, Source: SourceWebhook}, DetectedAt: sealTime,
	}
}

// mustLedger seals n changes into a chain.
func mustLedger(tb testing.TB, n int) []LedgerEntry {
	tb.Helper()
	var out []LedgerEntry
	var head LedgerEntry
	for i := range n {
		c := sampleChange(fmt.Sprintf("c%02d", i), fmt.Sprint(5000+i))
		head = NextEntry(head, EntryChange, c.ChangeID, sealTime.Add(time.Duration(i)*time.Second), LogFields(c, time.UTC))
		out = append(out, head)
	}
	return out
}

func chainProblems(entries []LedgerEntry) []ProblemKind {
	var c ChainCheck
	var kinds []ProblemKind
	for _, e := range entries {
		for _, p := range c.Add(e) {
			kinds = append(kinds, p.Kind)
		}
	}
	return kinds
}

func TestLogFieldsAreTheRow(t *testing.T) {
	c := sampleChange("c1", "5000")
	c.Reverses = "c0"
	fs := LogFields(c, time.UTC)
	got := map[string]string{}
	for _, f := range fs {
		got[f.Title] = f.Value
	}
	want := map[string]string{
		LogWorkRequest: "91234567", LogWeekEnding: "2026-11-22", LogSourceSheet: "Crew A", LogSourceRow: "Row 3",
		LogColumn: "Units Total Price", LogOldValue: "650", LogNewValue: "5000", LogDelta: "4350.00", LogImpact: "4350.00",
		LogChangedBy: "kim@example.com", LogChangedAt: "2026-11-24T09:30:00Z", LogChangedOn: "2026-11-24",
		LogDetectedOn: "2026-11-25", LogAttribution: "webhook", LogUnauthorized: "YES", LogRisk: "HIGH",
		LogKind: "VALUE_CHANGED", LogRunID: "20261125T160000Z-abcdef", LogChangeID: "c1", LogReverses: "c0",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("LogFields() (-want +got):\n%s", diff)
	}
	if fs[3].Link != c.Permalink {
		t.Errorf("LogFields() source row link = %q, want %q", fs[3].Link, c.Permalink)
	}
	unvalued := c
	unvalued.Unvalued, unvalued.Delta, unvalued.Attribution = true, nil, Attribution{Source: SourceUnknown, WindowEnd: sealTime}
	fs = LogFields(unvalued, time.UTC)
	for _, title := range []string{LogImpact, LogDelta, LogChangedOn} {
		if v := FieldValue(fs, title); v != "" {
			t.Errorf("LogFields(unvalued, time unknown) %s = %q, want empty", title, v)
		}
	}
}

func TestChainCheck(t *testing.T) {
	tests := []struct {
		name   string
		tamper func([]LedgerEntry) []LedgerEntry
		want   []ProblemKind
	}{
		{name: "untouched", tamper: func(es []LedgerEntry) []LedgerEntry { return es }},
		{name: "field altered", tamper: func(es []LedgerEntry) []LedgerEntry {
			es[2].Fields = slices.Clone(es[2].Fields)
			es[2].Fields[8].Value = "1.00"
			return es
		}, want: []ProblemKind{ProblemAlteredEntry}},
		{name: "altered and re-sealed", tamper: func(es []LedgerEntry) []LedgerEntry {
			es[2].Fields = slices.Clone(es[2].Fields)
			es[2].Fields[8].Value = "1.00"
			es[2].Hash = es[2].ComputeHash()
			return es
		}, want: []ProblemKind{ProblemBrokenChain}},
		{name: "entry removed", tamper: func(es []LedgerEntry) []LedgerEntry {
			return slices.Delete(es, 2, 3)
		}, want: []ProblemKind{ProblemOutOfOrder, ProblemBrokenChain}},
		{name: "entries swapped", tamper: func(es []LedgerEntry) []LedgerEntry {
			es[1], es[2] = es[2], es[1]
			return es
		}, want: []ProblemKind{ProblemOutOfOrder, ProblemBrokenChain, ProblemOutOfOrder, ProblemBrokenChain, ProblemOutOfOrder, ProblemBrokenChain}},
		{name: "entry unreadable", tamper: func(es []LedgerEntry) []LedgerEntry {
			// The store could not decode it: named once, the next entry's
			// link is not held against it.
			es[2] = UnreadableEntry(3, errors.New("bad bytes"))
			return es
		}, want: []ProblemKind{ProblemAlteredEntry}},
		{name: "unreadable entry out of place", tamper: func(es []LedgerEntry) []LedgerEntry {
			es[2] = UnreadableEntry(9, errors.New("bad bytes"))
			return es
		}, want: []ProblemKind{ProblemOutOfOrder, ProblemAlteredEntry, ProblemOutOfOrder}},
		{name: "whole chain re-sealed from entry 3", tamper: func(es []LedgerEntry) []LedgerEntry {
			// Undetectable by the chain alone: the signed digest catches it.
			head := es[1]
			for i := 2; i < len(es); i++ {
				e := es[i]
				e.Fields = slices.Clone(e.Fields)
				e.Fields[8].Value = "1.00"
				head = NextEntry(head, e.Type, e.Subject, e.SealedAt, e.Fields)
				es[i] = head
			}
			return es
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := chainProblems(tt.tamper(mustLedger(t, 5)))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ChainCheck problems (-want +got):\n%s", diff)
			}
		})
	}
}

// rowOf is the audit-sheet row a ledger entry was written as.
func rowOf(e LedgerEntry, number int) SheetRow {
	r := SheetRow{RowID: int64(1000 + number), RowNumber: number, Cells: map[string]SheetCell{}}
	for _, f := range e.Fields {
		r.Cells[f.Title] = SheetCell{Value: f.Value, Link: f.Link}
	}
	r.Cells[LogSeal] = SheetCell{Value: e.Seal()}
	return r
}

func TestCompareRow(t *testing.T) {
	e := mustLedger(t, 1)[0]
	tests := []struct {
		name     string
		edit     func(SheetRow)
		editable map[string]bool
		want     []Problem
	}{
		{name: "as written", edit: func(SheetRow) {}},
		{name: "as Smartsheet returns it", edit: func(r SheetRow) {
			r.Cells[LogImpact] = SheetCell{Value: "4350"} // a number loses its trailing zeros
			r.Cells[LogWorkRequest] = SheetCell{Value: "91234567"}
			r.Cells[LogDelta] = SheetCell{Value: "4.35E3"}
		}},
		{name: "money overwritten", edit: func(r SheetRow) { r.Cells[LogImpact] = SheetCell{Value: "0"} },
			want: []Problem{{Kind: ProblemAlteredCell, Column: LogImpact, Ledger: "4350.00", Sheet: "0"}}},
		{name: "text with separators is not the number", edit: func(r SheetRow) { r.Cells[LogNewValue] = SheetCell{Value: "5,000"} },
			want: []Problem{{Kind: ProblemAlteredCell, Column: LogNewValue, Ledger: "5000", Sheet: "5,000"}}},
		{name: "empty cell filled in", edit: func(r SheetRow) {
			r.Cells[LogDelta] = SheetCell{}
			r.Cells[LogChangedBy] = SheetCell{Value: "someone@else"}
		},
			want: []Problem{
				{Kind: ProblemAlteredCell, Column: LogDelta, Ledger: "4350.00"},
				{Kind: ProblemAlteredCell, Column: LogChangedBy, Ledger: "kim@example.com", Sheet: "someone@else"},
			}},
		{name: "link changed", edit: func(r SheetRow) {
			r.Cells[LogSourceRow] = SheetCell{Value: "Row 3", Link: "https://evil.example"}
		}, want: []Problem{{Kind: ProblemAlteredCell, Column: LogSourceRow + " (link)", Ledger: e.Fields[3].Link, Sheet: "https://evil.example"}}},
		{name: "seal changed", edit: func(r SheetRow) { r.Cells[LogSeal] = SheetCell{Value: "S0000000000000000"} },
			want: []Problem{{Kind: ProblemSealMismatch, Column: LogSeal, Ledger: e.Seal(), Sheet: "S0000000000000000"}}},
		{name: "editable column ignored", edit: func(r SheetRow) { r.Cells[LogRisk] = SheetCell{Value: "LOW"} },
			editable: map[string]bool{LogRisk: true}},
		{name: "date as another text of the same day", edit: func(r SheetRow) { r.Cells[LogWeekEnding] = SheetCell{Value: "2026-11-22T00:00:00Z"} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			row := rowOf(e, 4)
			tt.edit(row)
			got := CompareRow(e, row, tt.editable, nil)
			for i := range tt.want {
				tt.want[i].ChangeID, tt.want[i].WorkRequest, tt.want[i].RowNumber, tt.want[i].RowID, tt.want[i].Seq = e.Subject, "91234567", 4, 1004, 1
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("CompareRow() (-want +got):\n%s", diff)
			}
			// The prints agree with CompareRow: equal exactly when it finds nothing.
			same := EntryPrint(e, tt.editable) == SheetRowPrint(e.Fields, true, row, tt.editable)
			if same != (len(got) == 0) {
				t.Errorf("prints equal = %v, CompareRow found %d problems", same, len(got))
			}
		})
	}
}

func TestSealIsNeverANumber(t *testing.T) {
	e := LedgerEntry{Hash: "0123456789012345" + strings.Repeat("0", 48)}
	if got := e.Seal(); got != "S0123456789012345" {
		t.Errorf("Seal() = %q, want S0123456789012345", got)
	}
}

func TestEncodeEntry(t *testing.T) {
	for _, e := range mustLedger(t, 3) {
		b := EncodeEntry(e)
		got, err := DecodeEntry(b)
		if err != nil {
			t.Fatalf("DecodeEntry(EncodeEntry(entry %d)) error = %v", e.Seq, err)
		}
		if diff := cmp.Diff(e, got); diff != "" {
			t.Errorf("entry %d round trip (-want +got):\n%s", e.Seq, diff)
		}
		if got.ComputeHash() != e.Hash || !strings.HasPrefix(string(b), string(e.Canonical())) {
			t.Errorf("entry %d: the stored bytes do not start with what was hashed", e.Seq)
		}
	}
	e := mustLedger(t, 1)[0]
	b := EncodeEntry(e)
	tests := []struct {
		name string
		b    []byte
	}{
		{name: "empty", b: nil},
		{name: "truncated", b: b[:len(b)-10]},
		{name: "trailing bytes", b: append(slices.Clone(b), "3:abc\n"...)},
		{name: "length beyond the end", b: []byte("23:billing-audit-ledger/v1\n999:x\n")},
		{name: "other version", b: []byte(strings.Replace(string(b), LedgerVersion, "billing-audit-ledger/v9", 1))},
		{name: "bad length", b: []byte("x:y\n")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := DecodeEntry(tt.b); err == nil {
				t.Errorf("DecodeEntry(%s) = nil error, want one", tt.name)
			}
		})
	}
}

func FuzzDecodeEntry(f *testing.F) {
	for _, e := range mustLedger(f, 2) {
		f.Add(EncodeEntry(e))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeEntry(b)
		if err != nil {
			return
		}
		if again, err := DecodeEntry(EncodeEntry(e)); err != nil || !cmp.Equal(e, again) {
			t.Errorf("re-encoding a decoded entry does not round trip: %v", err)
		}
	})
}

func pemOf(tb testing.TB, pub any) []byte {
	tb.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		tb.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func TestVerifySignature(t *testing.T) {
	msg := []byte(`{"version":1}`)
	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	ecPriv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sum := sha256.Sum256(msg)
	ecSig, _ := ecdsa.SignASN1(rand.Reader, ecPriv, sum[:])
	edSig := ed25519.Sign(edPriv, msg)
	tests := []struct {
		name    string
		pub     []byte
		alg     string
		msg     []byte
		sig     []byte
		wantErr bool
	}{
		{name: "ed25519", pub: pemOf(t, edPub), alg: AlgEd25519, msg: msg, sig: edSig},
		{name: "ed25519 tampered", pub: pemOf(t, edPub), alg: AlgEd25519, msg: []byte(`{"version":2}`), sig: edSig, wantErr: true},
		{name: "ecdsa", pub: pemOf(t, &ecPriv.PublicKey), alg: AlgECDSASHA256, msg: msg, sig: ecSig},
		{name: "ecdsa tampered", pub: pemOf(t, &ecPriv.PublicKey), alg: AlgECDSASHA256, msg: []byte(`{}`), sig: ecSig, wantErr: true},
		{name: "wrong key type", pub: pemOf(t, edPub), alg: AlgECDSASHA256, msg: msg, sig: ecSig, wantErr: true},
		{name: "unknown algorithm", pub: pemOf(t, edPub), alg: "RSA", msg: msg, sig: edSig, wantErr: true},
		{name: "not a key", pub: []byte("hello"), alg: AlgEd25519, msg: msg, sig: edSig, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifySignature(tt.pub, tt.alg, tt.msg, tt.sig)
			if (err != nil) != tt.wantErr {
				t.Errorf("VerifySignature() error = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

// signedDigests makes a chain of digests over ledger, one per pinned seq.
func signedDigests(tb testing.TB, ledger []LedgerEntry, priv ed25519.PrivateKey, pins ...uint64) (names []string, data, sigs [][]byte) {
	tb.Helper()
	prev := ""
	for i, seq := range pins {
		d := Digest{Version: DigestVersion, Number: uint64(i + 1), RunID: fmt.Sprint("run", i), CreatedAt: sealTime,
			LastSeq: seq, PreviousDigest: prev, Algorithm: AlgEd25519, KeyID: "k"}
		if seq > 0 {
			d.HeadHash = ledger[seq-1].Hash
		}
		b, err := d.Bytes()
		if err != nil {
			tb.Fatal(err)
		}
		names = append(names, DigestName(d.Number, d.RunID))
		data = append(data, b)
		sigs = append(sigs, ed25519.Sign(priv, b))
		prev = HashBytes(b)
	}
	return names, data, sigs
}

func TestDigestCheck(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	tests := []struct {
		name   string
		tamper func(ledger []LedgerEntry, data, sigs [][]byte) ([]LedgerEntry, [][]byte, [][]byte)
		want   []ProblemKind
	}{
		{name: "untouched", tamper: func(l []LedgerEntry, d, s [][]byte) ([]LedgerEntry, [][]byte, [][]byte) { return l, d, s }},
		{name: "ledger re-sealed under a digest", tamper: func(l []LedgerEntry, d, s [][]byte) ([]LedgerEntry, [][]byte, [][]byte) {
			l[2] = NextEntry(l[1], l[2].Type, l[2].Subject, l[2].SealedAt, nil)
			return l, d, s
		}, want: []ProblemKind{ProblemDigestMismatch}},
		{name: "ledger truncated", tamper: func(l []LedgerEntry, d, s [][]byte) ([]LedgerEntry, [][]byte, [][]byte) {
			return l[:4], d, s
		}, want: []ProblemKind{ProblemDigestMismatch}},
		{name: "digest edited", tamper: func(l []LedgerEntry, d, s [][]byte) ([]LedgerEntry, [][]byte, [][]byte) {
			d[1] = []byte(string(d[1][:len(d[1])-2]) + " }\n")
			return l, d, s
		}, want: []ProblemKind{ProblemDigestSignature, ProblemDigestChain}},
		{name: "digest signed by another key", tamper: func(l []LedgerEntry, d, s [][]byte) ([]LedgerEntry, [][]byte, [][]byte) {
			s[0] = ed25519.Sign(otherPriv, d[0])
			return l, d, s
		}, want: []ProblemKind{ProblemDigestSignature}},
		{name: "digest removed", tamper: func(l []LedgerEntry, d, s [][]byte) ([]LedgerEntry, [][]byte, [][]byte) {
			return l, slices.Delete(d, 1, 2), slices.Delete(s, 1, 2)
		}, want: []ProblemKind{ProblemDigestChain, ProblemDigestChain}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ledger := mustLedger(t, 5)
			_, data, sigs := signedDigests(t, ledger, priv, 0, 3, 5)
			ledger, data, sigs = tt.tamper(ledger, data, sigs)
			c := DigestCheck{PublicKey: pemOf(t, pub), HashAt: func(seq uint64) (string, bool, error) {
				if seq == 0 || seq > uint64(len(ledger)) {
					return "", false, nil
				}
				return ledger[seq-1].Hash, true, nil
			}}
			var got []ProblemKind
			for i := range data {
				ps, err := c.Add(fmt.Sprint(i), data[i], sigs[i])
				if err != nil {
					t.Fatal(err)
				}
				for _, p := range ps {
					got = append(got, p.Kind)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("DigestCheck problems (-want +got):\n%s", diff)
			}
		})
	}
}

func TestVerificationSummary(t *testing.T) {
	var v Verification
	v.Entries, v.HeadSeq, v.Matched, v.HeadHash = 3, 3, 3, "abcdef0123456789abcdef"
	if !v.OK() || !v.LedgerOK() {
		t.Fatalf("empty verification: OK() = %v, LedgerOK() = %v, want true", v.OK(), v.LedgerOK())
	}
	v.Add(Problem{Kind: ProblemDeletedRow}, Problem{Kind: ProblemAlteredCell}, Problem{Kind: ProblemAlteredCell})
	if v.OK() || !v.LedgerOK() {
		t.Errorf("sheet problems: OK() = %v, LedgerOK() = %v, want false, true", v.OK(), v.LedgerOK())
	}
	if got, want := v.Summary(), "TAMPERING DETECTED: 3 problems (2 ALTERED_CELL, 1 DELETED_ROW)"; got != want {
		t.Errorf("Summary() = %q, want %q", got, want)
	}
	v.Add(Problem{Kind: ProblemBrokenChain})
	if v.LedgerOK() {
		t.Error("LedgerOK() with a broken chain = true, want false")
	}
}

// TestCanonicalDecimal: the fast path agrees with decimal.Decimal.String.
func TestCanonicalDecimal(t *testing.T) {
	for _, in := range []string{"0", "00", "0.0", "-0", "-0.00", "+12", "0123", "4350.00", "4350", "-40.50", ".5", "5.", "-.50",
		"1200.000100", "99999999999999999999.99", "1", "10", "100.10"} {
		got, ok := canonicalDecimal(in)
		want := decimal.RequireFromString(in).String()
		if !ok || got != want {
			t.Errorf("canonicalDecimal(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "-", "+", ".", "1e3", "1,200", "$5", "12a", "--1", "1.2.3", " 1"} {
		if got, ok := canonicalDecimal(in); ok {
			t.Errorf("canonicalDecimal(%q) = %q, true; want the slow path", in, got)
		}
	}
}

// TestSameValueExponents: a number compares by value however it is written,
// and text with an exponent no float64 holds compares as text, at once
// (FuzzAuditRowCells found "1e999999999" on the audit sheet stalling
// verification while it wrote out a billion digits).
func TestSameValueExponents(t *testing.T) {
	tests := []struct {
		name          string
		kind          FieldKind
		sealed, found string
		want          bool
	}{
		{name: "exponent and digits", kind: FieldText, sealed: "1e5", found: "100000", want: true},
		{name: "float form", kind: FieldNumber, sealed: "4350.00", found: "4.35E3", want: true},
		{name: "largest float64", kind: FieldNumber, sealed: "1.7976931348623157e308", found: "17976931348623157" + strings.Repeat("0", 292), want: true},
		{name: "smallest float64", kind: FieldNumber, sealed: "5e-324", found: "0." + strings.Repeat("0", 323) + "5", want: true},
		{name: "huge exponent, same text", kind: FieldText, sealed: "1e999999999", found: "1e999999999", want: true},
		{name: "huge exponent, other text", kind: FieldText, sealed: "1e999999999", found: "1E999999999", want: false},
		{name: "huge negative exponent", kind: FieldNumber, sealed: "1e-999999999", found: "0", want: false},
		{name: "exponent beyond int32", kind: FieldText, sealed: "1e99999999999", found: "1e99999999999", want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			if got := sameValue(tt.kind, tt.sealed, tt.found); got != tt.want {
				t.Errorf("sameValue(%s, %q, %q) = %v, want %v", tt.kind, tt.sealed, tt.found, got, tt.want)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("sameValue(%s, %q, %q) took %v, want well under a second", tt.kind, tt.sealed, tt.found, d)
			}
		})
	}
}

package audit

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// FuzzVerifyDigest checks stored digests the way verification does
// (DigestCheck.Add: decode the bytes, verify the signature with the public
// key beside the digests, follow the chain, compare with the ledger), with
// both signing keys: the local Ed25519 key and the KMS ECDSA P-256 key.
//
// Arbitrary bytes and signatures never panic. A digest signed by the product
// (its bytes as Digest.Bytes writes them) verifies with no problem and
// decodes to what was signed. Changing any one byte of its content, or of
// its signature, is a DIGEST_BAD_SIGNATURE (the digest fails to decode or
// its signature fails): nothing else verifies under the signature — the
// arbitrary bytes are checked with it too, and verify only if they are the
// signed bytes.
func FuzzVerifyDigest(f *testing.F) {
	f.Add([]byte(`{"version":1}`), []byte{}, uint64(1), "20261125T150000Z-abc123", uint64(0), "", "", int64(1764086400), uint32(0), byte(1), false)
	f.Add([]byte("not json"), []byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01}, uint64(7), "20261130T060000Z-7f3e",
		uint64(1042), strings.Repeat("9f2c", 16), strings.Repeat("41ab", 16), int64(1764482400), uint32(17), byte(0x20), true)
	f.Add([]byte(`{"version":1,"number":2,"signingAlgorithm":"Ed25519","previousDigest":""}`), []byte(nil), uint64(2), "run<&>\u2028",
		uint64(1<<63), "h", "p", int64(-62135596800), uint32(1<<31), byte(0xff), false)
	edPriv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	ecPriv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	edPEM, ecPEM := pemOf(f, edPriv.Public()), pemOf(f, &ecPriv.PublicKey)

	f.Fuzz(func(t *testing.T, raw, rawSig []byte, number uint64, runID string, lastSeq uint64, headHash, prev string,
		at int64, pos uint32, x byte, kms bool) {
		pub, alg, sign := edPEM, AlgEd25519, func(msg []byte) []byte { return ed25519.Sign(edPriv, msg) }
		if kms {
			pub, alg = ecPEM, AlgECDSASHA256
			sign = func(msg []byte) []byte {
				sum := sha256.Sum256(msg)
				sig, err := ecdsa.SignASN1(rand.Reader, ecPriv, sum[:])
				if err != nil {
					t.Fatal(err)
				}
				return sig
			}
		}
		// Each check starts where the digest's chain says it follows, with a
		// ledger that holds the head the digest pins.
		text := func(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }
		number = max(number, 1)
		d := Digest{Version: DigestVersion, Number: number, RunID: text(runID), CreatedAt: fuzzTime(at), LastSeq: lastSeq,
			HeadHash: text(headHash), RunChanges: int(pos % 5000), AuditRows: int(x) * 400, PreviousDigest: text(prev), Algorithm: alg, KeyID: "key-1"}
		if number == 1 {
			d.PreviousDigest = ""
		}
		check := func(data, sig []byte) []Problem {
			c := DigestCheck{PublicKey: pub, HashAt: func(seq uint64) (string, bool, error) { return d.HeadHash, seq == d.LastSeq, nil }}
			if d.Number > 1 {
				c.StartAfter(d.Number-1, d.PreviousDigest)
			}
			ps, err := c.Add(DigestName(d.Number, d.RunID), data, sig)
			if err != nil {
				t.Fatalf("DigestCheck.Add: %v", err)
			}
			return ps
		}

		// Arbitrary bytes, with an arbitrary signature: no panic.
		_, _ = ParseDigest(raw)
		_ = check(raw, rawSig)
		_ = VerifySignature(raw, text(runID), raw, rawSig)

		// The product's digest verifies and decodes to what was signed.
		data, err := d.Bytes()
		if err != nil {
			t.Fatalf("Digest.Bytes(%+v): %v", d, err)
		}
		sig := sign(data)
		if ps := check(data, sig); len(ps) > 0 {
			t.Fatalf("the signed digest %s: problems %v, want none", data, ps)
		}
		got, err := ParseDigest(data)
		if err != nil {
			t.Fatalf("ParseDigest(%s): %v", data, err)
		}
		if diff := cmp.Diff(d, got); diff != "" {
			t.Fatalf("ParseDigest(Bytes()) differs from the digest signed (-signed +read):\n%s", diff)
		}

		// One byte changed, in the content or the signature, and any other
		// content under the signature: a bad signature.
		if x == 0 {
			x = 1
		}
		content := slices.Clone(data)
		content[int(pos)%len(content)] ^= x
		badSig := slices.Clone(sig)
		badSig[int(pos)%len(badSig)] ^= x
		for _, tt := range []struct {
			name      string
			data, sig []byte
		}{
			{name: "content changed", data: content, sig: sig},
			{name: "signature changed", data: data, sig: badSig},
			{name: "arbitrary content", data: raw, sig: sig},
		} {
			if bytes.Equal(tt.data, data) && bytes.Equal(tt.sig, sig) {
				continue // the arbitrary content is the digest itself
			}
			if ps := check(tt.data, tt.sig); !slices.ContainsFunc(ps, func(p Problem) bool { return p.Kind == ProblemDigestSignature }) {
				t.Fatalf("%s (byte %d ^ %#x) %q: problems %v, want %s", tt.name, int(pos)%len(data), x, tt.data, ps, ProblemDigestSignature)
			}
		}
	})
}

// fuzzTime is a time JSON can write (years 1 to 9999), to the nanosecond.
func fuzzTime(at int64) time.Time {
	const first, span = -62135596800, 315537897600 // 0001-01-01, 10,000 years less a day
	sec := first + (at%span+span)%span
	return time.Unix(sec, ((at>>8)&0x3fffffff)%1e9).UTC()
}

package kmssign_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/fieldaudit/billing-audit/shared/aws/kmssign"
	"github.com/fieldaudit/billing-audit/shared/local/localstacktest"
)

// MustMotoKMS starts moto and returns a KMS client on it.
func MustMotoKMS(tb testing.TB) *kms.Client {
	tb.Helper()
	endpoint := localstacktest.StartMoto(tb)
	cfg, err := awsconfig.LoadDefaultConfig(context.Background(), awsconfig.WithRegion("us-east-1"), awsconfig.WithBaseEndpoint(endpoint),
		awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")))
	if err != nil {
		tb.Fatal(err)
	}
	return kms.NewFromConfig(cfg)
}

// MustParsePEM parses a PEM "PUBLIC KEY" block into an ECDSA key.
func MustParsePEM(tb testing.TB, b []byte) *ecdsa.PublicKey {
	tb.Helper()
	block, rest := pem.Decode(b)
	if block == nil || block.Type != "PUBLIC KEY" || len(strings.TrimSpace(string(rest))) != 0 {
		tb.Fatalf("PublicKeyPEM() = %q, want one PUBLIC KEY block", b)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		tb.Fatal(err)
	}
	ec, ok := pub.(*ecdsa.PublicKey)
	if !ok || ec.Curve != elliptic.P256() {
		tb.Fatalf("public key = %T, want an ECDSA P-256 key", pub)
	}
	return ec
}

// TestSignerOnMoto signs with a real ECC_NIST_P256 key in moto's KMS and
// verifies the way a third party would: with the PEM alone, in Go and openssl.
func TestSignerOnMoto(t *testing.T) {
	api := MustMotoKMS(t)
	ctx := context.Background()
	key, err := api.CreateKey(ctx, &kms.CreateKeyInput{
		KeySpec: types.KeySpecEccNistP256, KeyUsage: types.KeyUsageTypeSignVerify, Description: aws.String("digest key"),
	})
	if err != nil {
		t.Fatal(err)
	}
	keyID := aws.ToString(key.KeyMetadata.KeyId)
	s := kmssign.New(api, keyID)
	if s.KeyID() != keyID || s.Algorithm() != "ECDSA_SHA_256" {
		t.Errorf("KeyID(), Algorithm() = %q, %q, want %q, ECDSA_SHA_256", s.KeyID(), s.Algorithm(), keyID)
	}
	msg := []byte(`{"run":"20261125T150000Z-abc123","rows":1042,"head":"9f2c…","previous":"41ab…"}`)
	sig, err := s.Sign(ctx, msg)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, err := s.PublicKeyPEM(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pub := MustParsePEM(t, pemBytes)

	for _, tc := range []struct {
		name string
		msg  []byte
		want bool
	}{
		{"signed message", msg, true},
		{"tampered message", []byte(strings.Replace(string(msg), "1042", "1043", 1)), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := sha256.Sum256(tc.msg)
			if got := ecdsa.VerifyASN1(pub, h[:], sig); got != tc.want {
				t.Errorf("ecdsa.VerifyASN1(%s) = %v, want %v", tc.name, got, tc.want)
			}
		})
	}

	t.Run("openssl", func(t *testing.T) {
		bin, err := exec.LookPath("openssl")
		if err != nil {
			t.Skip("openssl not on PATH: skipping the third-party verification with openssl dgst")
		}
		dir := t.TempDir()
		for name, data := range map[string][]byte{"pub.pem": pemBytes, "sig.der": sig, "msg.json": msg, "tampered.json": append([]byte(" "), msg...)} {
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		for _, tc := range []struct {
			file string
			ok   bool
		}{{"msg.json", true}, {"tampered.json", false}} {
			cmd := exec.Command(bin, "dgst", "-sha256", "-verify", "pub.pem", "-signature", "sig.der", tc.file)
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			if got := err == nil; got != tc.ok {
				t.Errorf("openssl dgst -sha256 -verify pub.pem -signature sig.der %s: ok = %v (%v: %s), want %v", tc.file, got, err, out, tc.ok)
			}
			if tc.ok && !strings.Contains(string(out), "Verified OK") {
				t.Errorf("openssl output = %q, want Verified OK", out)
			}
		}
	})
}

// fakeKMS is a function-field fake of kmssign.API.
type fakeKMS struct {
	sign         func(*kms.SignInput) (*kms.SignOutput, error)
	getPublicKey func(*kms.GetPublicKeyInput) (*kms.GetPublicKeyOutput, error)
}

func (f *fakeKMS) Sign(_ context.Context, in *kms.SignInput, _ ...func(*kms.Options)) (*kms.SignOutput, error) {
	return f.sign(in)
}

func (f *fakeKMS) GetPublicKey(_ context.Context, in *kms.GetPublicKeyInput, _ ...func(*kms.Options)) (*kms.GetPublicKeyOutput, error) {
	return f.getPublicKey(in)
}

var _ kmssign.API = (*fakeKMS)(nil)

func mustDER(tb testing.TB) []byte {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		tb.Fatal(err)
	}
	return der
}

func TestSignRequest(t *testing.T) {
	var got *kms.SignInput
	s := kmssign.New(&fakeKMS{sign: func(in *kms.SignInput) (*kms.SignOutput, error) {
		got = in
		return &kms.SignOutput{Signature: []byte{0x30, 0x01}}, nil
	}}, "alias/digest")
	if _, err := s.Sign(context.Background(), []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if aws.ToString(got.KeyId) != "alias/digest" || got.MessageType != types.MessageTypeRaw ||
		got.SigningAlgorithm != types.SigningAlgorithmSpecEcdsaSha256 || string(got.Message) != "{}" {
		t.Errorf("Sign() sent %+v, want key alias/digest, RAW, ECDSA_SHA_256, the message itself", got)
	}
}

func TestSignerErrors(t *testing.T) {
	boom := errors.New("AccessDeniedException")
	der := mustDER(t)
	okSign := func(*kms.SignInput) (*kms.SignOutput, error) { return &kms.SignOutput{Signature: []byte{1}}, nil }
	tests := []struct {
		name    string
		api     *fakeKMS
		msg     []byte // nil: call PublicKeyPEM
		want    string
		wantErr error
	}{
		{name: "sign fails", api: &fakeKMS{sign: func(*kms.SignInput) (*kms.SignOutput, error) { return nil, boom }},
			msg: []byte("{}"), want: "kms sign with key k1", wantErr: boom},
		{name: "empty message", api: &fakeKMS{sign: okSign}, msg: []byte{}, want: "message of 0 bytes"},
		{name: "message over the RAW limit", api: &fakeKMS{sign: okSign}, msg: make([]byte, kmssign.MaxMessage+1), want: "message of 4097 bytes"},
		{name: "empty signature", api: &fakeKMS{sign: func(*kms.SignInput) (*kms.SignOutput, error) { return &kms.SignOutput{}, nil }},
			msg: []byte("{}"), want: "empty signature"},
		{name: "get public key fails", api: &fakeKMS{getPublicKey: func(*kms.GetPublicKeyInput) (*kms.GetPublicKeyOutput, error) { return nil, boom }},
			want: "kms get public key k1", wantErr: boom},
		{name: "key without ECDSA_SHA_256", api: &fakeKMS{getPublicKey: func(*kms.GetPublicKeyInput) (*kms.GetPublicKeyOutput, error) {
			return &kms.GetPublicKeyOutput{PublicKey: der, SigningAlgorithms: []types.SigningAlgorithmSpec{types.SigningAlgorithmSpecEcdsaSha384}}, nil
		}}, want: "want ECDSA_SHA_256"},
		{name: "public key not DER", api: &fakeKMS{getPublicKey: func(*kms.GetPublicKeyInput) (*kms.GetPublicKeyOutput, error) {
			return &kms.GetPublicKeyOutput{PublicKey: []byte("nope"), SigningAlgorithms: []types.SigningAlgorithmSpec{types.SigningAlgorithmSpecEcdsaSha256}}, nil
		}}, want: "parse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := kmssign.New(tt.api, "k1")
			var err error
			if tt.msg != nil {
				_, err = s.Sign(context.Background(), tt.msg)
			} else {
				_, err = s.PublicKeyPEM(context.Background())
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Errorf("%s: error = %v, want one containing %q (wrapping %v)", tt.name, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestPublicKeyPEMCached(t *testing.T) {
	der := mustDER(t)
	calls := 0
	s := kmssign.New(&fakeKMS{getPublicKey: func(*kms.GetPublicKeyInput) (*kms.GetPublicKeyOutput, error) {
		calls++
		return &kms.GetPublicKeyOutput{PublicKey: der, SigningAlgorithms: []types.SigningAlgorithmSpec{types.SigningAlgorithmSpecEcdsaSha256}}, nil
	}}, "k1")
	first, err := s.PublicKeyPEM(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	first[0] = 'X' // a caller scribbling on its copy must not change the cache
	second, err := s.PublicKeyPEM(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if calls != 1 {
		t.Errorf("GetPublicKey calls = %d, want 1 (cached)", calls)
	}
	MustParsePEM(t, second)
}

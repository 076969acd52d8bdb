package digestfile_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/digestfile"
)

func TestKeyAndDigests(t *testing.T) {
	ctx := context.Background()
	state, out := t.TempDir(), filepath.Join(t.TempDir(), "digests")
	if _, err := digestfile.Open(state); err != digestfile.ErrNoKey {
		t.Fatalf("Open(no key) error = %v, want ErrNoKey", err)
	}
	created, err := digestfile.CreateKey(state)
	if err != nil || !created {
		t.Fatalf("CreateKey() = %v, %v; want true, nil", created, err)
	}
	if again, err := digestfile.CreateKey(state); err != nil || again {
		t.Errorf("CreateKey(again) = %v, %v; want false, nil (the key is kept)", again, err)
	}
	fi, err := os.Stat(filepath.Join(state, digestfile.KeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode = %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	s, err := digestfile.Open(state)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("{\n  \"version\": 1\n}\n")
	sig, _ := s.Sign(ctx, msg)
	pub, _ := s.PublicKeyPEM(ctx)
	if err := audit.VerifySignature(pub, s.Algorithm(), msg, sig); err != nil {
		t.Errorf("VerifySignature(own signature) = %v", err)
	}

	d := digestfile.Dir(out)
	if names, err := d.List(ctx); err != nil || len(names) != 0 {
		t.Fatalf("List(empty) = %v, %v", names, err)
	}
	if _, err := d.Put(ctx, "0000000001-run", msg, sig); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Put(ctx, "0000000001-run", []byte("other"), sig); err == nil {
		t.Error("Put(same name again) = nil, want an error: a digest is never overwritten")
	}
	if err := d.PutPublicKey(ctx, pub); err != nil {
		t.Fatal(err)
	}
	if err := d.PutPublicKey(ctx, pub); err != nil {
		t.Errorf("PutPublicKey(same key again) = %v, want nil", err)
	}
	if err := d.PutPublicKey(ctx, []byte("another")); err == nil {
		t.Error("PutPublicKey(another key) = nil, want an error")
	}
	names, _ := d.List(ctx)
	gotMsg, gotSig, err := d.Get(ctx, names[0])
	if err != nil || string(gotMsg) != string(msg) || string(gotSig) != string(sig) {
		t.Errorf("Get(%v) = %q, %v; want the stored digest", names, gotMsg, err)
	}

	// A third party verifies with the public key alone, as README.md says.
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed: the third-party check is not run")
	}
	cmd := exec.Command(openssl, "pkeyutl", "-verify", "-pubin", "-inkey", filepath.Join(out, digestfile.PublicKeyFile),
		"-rawin", "-in", filepath.Join(out, names[0]+".json"), "-sigfile", filepath.Join(out, names[0]+".sig"))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("openssl pkeyutl -verify: %v\n%s", err, b)
	}
	os.Chmod(filepath.Join(out, names[0]+".json"), 0o644)
	if err := os.WriteFile(filepath.Join(out, names[0]+".json"), []byte("{\n  \"version\": 2\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(openssl, "pkeyutl", "-verify", "-pubin", "-inkey", filepath.Join(out, digestfile.PublicKeyFile),
		"-rawin", "-in", filepath.Join(out, names[0]+".json"), "-sigfile", filepath.Join(out, names[0]+".sig")).CombinedOutput(); err == nil {
		t.Errorf("openssl verified an edited digest:\n%s", b)
	}
}

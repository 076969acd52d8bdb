package digestfile

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestPutWithoutHardLinks: on a file system that refuses hard links the
// digest is still written once, the same bytes again count as written, and
// other bytes are refused.
func TestPutWithoutHardLinks(t *testing.T) {
	link = func(oldname, newname string) error {
		return &os.LinkError{Op: "link", Old: oldname, New: newname, Err: syscall.EPERM}
	}
	t.Cleanup(func() { link = os.Link })
	ctx := context.Background()
	d := Dir(t.TempDir())
	path, err := d.Put(ctx, "0000000001-run", []byte(`{"n":1}`), []byte("sig"))
	if err != nil {
		t.Fatalf("Put() error = %v", err)
	}
	if got, err := os.ReadFile(path); err != nil || string(got) != `{"n":1}` {
		t.Errorf("digest = %q, %v; want the bytes put", got, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm()&0o222 != 0 {
		t.Errorf("digest mode = %v, %v; want read-only", fi.Mode(), err)
	}
	if _, err := d.Put(ctx, "0000000001-run", []byte(`{"n":1}`), []byte("sig")); err != nil {
		t.Errorf("Put() of the same digest again = %v, want nil", err)
	}
	if _, err := d.Put(ctx, "0000000001-run", []byte(`{"n":2}`), []byte("sig")); err == nil {
		t.Error("Put() of other bytes under the same name succeeded")
	}
	tmps, _ := filepath.Glob(filepath.Join(string(d), ".tmp-*"))
	if len(tmps) != 0 {
		t.Errorf("temporary files left: %v", tmps)
	}
}

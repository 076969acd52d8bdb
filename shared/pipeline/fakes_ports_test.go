package pipeline

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
	"testing"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
	"github.com/fieldaudit/billing-audit/shared/webhook"
)

// Function-field fakes of the other ports: the queue and the fan-in, the
// publisher, the signer and the digest store, the report's workbook and
// sink, the webhook side and the blob store (see fakes_test.go).

// fakeQueue is a function-field fake of SheetQueue.
type fakeQueue struct {
	SendSheetWorkFunc func(ctx context.Context, w SheetWork) error
}

func (f *fakeQueue) SendSheetWork(ctx context.Context, w SheetWork) error {
	return f.SendSheetWorkFunc(ctx, w)
}

// fakeFanIn is a function-field fake of FanIn.
type fakeFanIn struct {
	SealFunc      func(ctx context.Context, runID string, batches int) (bool, error)
	BatchDoneFunc func(ctx context.Context, runID, batchID string) (bool, error)
	FinishFunc    func(ctx context.Context, runID string) error
}

var _ FanIn = (*fakeFanIn)(nil)

func (f *fakeFanIn) Seal(ctx context.Context, runID string, batches int) (bool, error) {
	return f.SealFunc(ctx, runID, batches)
}
func (f *fakeFanIn) BatchDone(ctx context.Context, runID, batchID string) (bool, error) {
	return f.BatchDoneFunc(ctx, runID, batchID)
}
func (f *fakeFanIn) Finish(ctx context.Context, runID string) error { return f.FinishFunc(ctx, runID) }

// newFakeFanIn counts batches in memory: the call that completes a sealed
// run claims it.
func newFakeFanIn() *fakeFanIn {
	var mu sync.Mutex
	sealed := map[string]int{}
	done := map[string]map[string]bool{}
	complete := func(runID string) bool {
		n, ok := sealed[runID]
		return ok && len(done[runID]) == n
	}
	return &fakeFanIn{
		SealFunc: func(_ context.Context, runID string, batches int) (bool, error) {
			mu.Lock()
			defer mu.Unlock()
			sealed[runID] = batches
			return complete(runID), nil
		},
		BatchDoneFunc: func(_ context.Context, runID, batchID string) (bool, error) {
			mu.Lock()
			defer mu.Unlock()
			if done[runID] == nil {
				done[runID] = map[string]bool{}
			}
			if done[runID][batchID] {
				return false, nil
			}
			done[runID][batchID] = true
			return complete(runID), nil
		},
		FinishFunc: func(context.Context, string) error { return nil },
	}
}

// fakePublisher is a function-field fake of Publisher.
type fakePublisher struct {
	RunCompletedFunc func(ctx context.Context, e RunCompleted) error
}

func (f *fakePublisher) RunCompleted(ctx context.Context, e RunCompleted) error {
	return f.RunCompletedFunc(ctx, e)
}

// fakeSigner is a function-field fake of Signer.
type fakeSigner struct {
	SignFunc         func(ctx context.Context, msg []byte) ([]byte, error)
	AlgorithmFunc    func() string
	KeyIDFunc        func() string
	PublicKeyPEMFunc func(ctx context.Context) ([]byte, error)
}

var _ Signer = (*fakeSigner)(nil)

func (f *fakeSigner) Sign(ctx context.Context, msg []byte) ([]byte, error) {
	return f.SignFunc(ctx, msg)
}
func (f *fakeSigner) Algorithm() string { return f.AlgorithmFunc() }
func (f *fakeSigner) KeyID() string     { return f.KeyIDFunc() }
func (f *fakeSigner) PublicKeyPEM(ctx context.Context) ([]byte, error) {
	return f.PublicKeyPEMFunc(ctx)
}

// mustFakeSigner signs with a fresh Ed25519 key, as the local key file does.
func mustFakeSigner(tb testing.TB) *fakeSigner {
	tb.Helper()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		tb.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		tb.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	return &fakeSigner{
		SignFunc:         func(_ context.Context, msg []byte) ([]byte, error) { return ed25519.Sign(priv, msg), nil },
		AlgorithmFunc:    func() string { return audit.AlgEd25519 },
		KeyIDFunc:        func() string { return "test-key" },
		PublicKeyPEMFunc: func(context.Context) ([]byte, error) { return bytes.Clone(pemKey), nil },
	}
}

// fakeDigests is a function-field fake of DigestStore.
type fakeDigests struct {
	PutFunc          func(ctx context.Context, name string, digest, signature []byte) (string, error)
	ListFunc         func(ctx context.Context) ([]string, error)
	GetFunc          func(ctx context.Context, name string) ([]byte, []byte, error)
	PutPublicKeyFunc func(ctx context.Context, pem []byte) error
	PublicKeyFunc    func(ctx context.Context) ([]byte, bool, error)
}

var _ DigestStore = (*fakeDigests)(nil)

func (f *fakeDigests) Put(ctx context.Context, name string, digest, signature []byte) (string, error) {
	return f.PutFunc(ctx, name, digest, signature)
}
func (f *fakeDigests) List(ctx context.Context) ([]string, error) { return f.ListFunc(ctx) }
func (f *fakeDigests) Get(ctx context.Context, name string) ([]byte, []byte, error) {
	return f.GetFunc(ctx, name)
}
func (f *fakeDigests) PutPublicKey(ctx context.Context, pem []byte) error {
	return f.PutPublicKeyFunc(ctx, pem)
}
func (f *fakeDigests) PublicKey(ctx context.Context) ([]byte, bool, error) {
	return f.PublicKeyFunc(ctx)
}

// newFakeDigests keeps digests in memory, refusing a name used twice.
func newFakeDigests() *fakeDigests {
	var mu sync.Mutex
	data, sigs := map[string][]byte{}, map[string][]byte{}
	var key []byte
	return &fakeDigests{
		PutFunc: func(_ context.Context, name string, d, s []byte) (string, error) {
			mu.Lock()
			defer mu.Unlock()
			if _, ok := data[name]; ok {
				return "", fmt.Errorf("digest %s exists", name)
			}
			data[name], sigs[name] = bytes.Clone(d), bytes.Clone(s)
			return "mem://" + name, nil
		},
		ListFunc: func(context.Context) ([]string, error) {
			mu.Lock()
			defer mu.Unlock()
			return slices.Sorted(maps.Keys(data)), nil
		},
		GetFunc: func(_ context.Context, name string) ([]byte, []byte, error) {
			mu.Lock()
			defer mu.Unlock()
			d, ok := data[name]
			if !ok {
				return nil, nil, fmt.Errorf("digest %s: not found", name)
			}
			return d, sigs[name], nil
		},
		PutPublicKeyFunc: func(_ context.Context, pem []byte) error {
			mu.Lock()
			defer mu.Unlock()
			key = bytes.Clone(pem)
			return nil
		},
		PublicKeyFunc: func(context.Context) ([]byte, bool, error) {
			mu.Lock()
			defer mu.Unlock()
			return bytes.Clone(key), key != nil, nil
		},
	}
}

// fakeWorkbook is a function-field fake of Workbook.
type fakeWorkbook struct {
	WriteFunc    func(w io.Writer, r audit.Report) error
	FileNameFunc func(r audit.Report) string
}

func (f *fakeWorkbook) Write(w io.Writer, r audit.Report) error { return f.WriteFunc(w, r) }
func (f *fakeWorkbook) FileName(r audit.Report) string          { return f.FileNameFunc(r) }

func newFakeWorkbook() *fakeWorkbook {
	return &fakeWorkbook{
		WriteFunc:    func(w io.Writer, _ audit.Report) error { _, err := io.WriteString(w, "xlsx"); return err },
		FileNameFunc: func(audit.Report) string { return "billing-audit-we-2026-11-29-run.xlsx" },
	}
}

// fakeReportSink is a function-field fake of ReportSink.
type fakeReportSink struct {
	PutFunc func(ctx context.Context, name string, data []byte) (string, error)
}

func (f *fakeReportSink) Put(ctx context.Context, name string, data []byte) (string, error) {
	return f.PutFunc(ctx, name, data)
}

// fakeRecords is a function-field fake of WebhookRecords.
type fakeRecords struct {
	PutRecordsFunc func(ctx context.Context, recs []webhook.Record) error
}

func (f *fakeRecords) PutRecords(ctx context.Context, recs []webhook.Record) error {
	return f.PutRecordsFunc(ctx, recs)
}

// fakeRefreshQueue is a function-field fake of RefreshQueue.
type fakeRefreshQueue struct {
	SendRefreshFunc func(ctx context.Context, f Refresh) error
}

func (f *fakeRefreshQueue) SendRefresh(ctx context.Context, r Refresh) error {
	return f.SendRefreshFunc(ctx, r)
}

// fakeWebhookAPI is a function-field fake of WebhookAPI.
type fakeWebhookAPI struct {
	ListWebhooksFunc      func(ctx context.Context) ([]smartsheet.Webhook, error)
	CreateWebhookFunc     func(ctx context.Context, w smartsheet.Webhook) (*smartsheet.Webhook, error)
	UpdateWebhookFunc     func(ctx context.Context, webhookID int64, u smartsheet.WebhookUpdate) (*smartsheet.Webhook, error)
	DeleteWebhookFunc     func(ctx context.Context, webhookID int64) error
	ResetSharedSecretFunc func(ctx context.Context, webhookID int64) (string, error)
}

var _ WebhookAPI = (*fakeWebhookAPI)(nil)

func (f *fakeWebhookAPI) ListWebhooks(ctx context.Context) ([]smartsheet.Webhook, error) {
	return f.ListWebhooksFunc(ctx)
}
func (f *fakeWebhookAPI) CreateWebhook(ctx context.Context, w smartsheet.Webhook) (*smartsheet.Webhook, error) {
	return f.CreateWebhookFunc(ctx, w)
}
func (f *fakeWebhookAPI) UpdateWebhook(ctx context.Context, id int64, u smartsheet.WebhookUpdate) (*smartsheet.Webhook, error) {
	return f.UpdateWebhookFunc(ctx, id, u)
}
func (f *fakeWebhookAPI) DeleteWebhook(ctx context.Context, id int64) error {
	return f.DeleteWebhookFunc(ctx, id)
}
func (f *fakeWebhookAPI) ResetSharedSecret(ctx context.Context, id int64) (string, error) {
	return f.ResetSharedSecretFunc(ctx, id)
}

// newFakeWebhookAPI keeps webhooks in memory; it creates them disabled,
// and enabling one enables it.
func newFakeWebhookAPI(have ...smartsheet.Webhook) *fakeWebhookAPI {
	var mu sync.Mutex
	hooks := map[int64]smartsheet.Webhook{}
	for _, w := range have {
		hooks[w.ID] = w
	}
	next := int64(40)
	return &fakeWebhookAPI{
		ListWebhooksFunc: func(context.Context) ([]smartsheet.Webhook, error) {
			mu.Lock()
			defer mu.Unlock()
			var out []smartsheet.Webhook
			for _, id := range slices.Sorted(maps.Keys(hooks)) {
				out = append(out, hooks[id])
			}
			return out, nil
		},
		CreateWebhookFunc: func(_ context.Context, w smartsheet.Webhook) (*smartsheet.Webhook, error) {
			mu.Lock()
			defer mu.Unlock()
			next++
			off := false
			w.ID, w.Status, w.Enabled, w.SharedSecret = next, "NEW_NOT_VERIFIED", &off, "s3cr3t"
			hooks[w.ID] = w
			return &w, nil
		},
		UpdateWebhookFunc: func(_ context.Context, id int64, u smartsheet.WebhookUpdate) (*smartsheet.Webhook, error) {
			mu.Lock()
			defer mu.Unlock()
			w, ok := hooks[id]
			if !ok {
				return nil, fmt.Errorf("webhook %d: not found", id)
			}
			if u.Enabled != nil {
				w.Enabled, w.Status = u.Enabled, smartsheet.WebhookEnabled
			}
			if u.Subscope != nil {
				w.Subscope = u.Subscope
			}
			hooks[id] = w
			return &w, nil
		},
		DeleteWebhookFunc: func(_ context.Context, id int64) error {
			mu.Lock()
			defer mu.Unlock()
			delete(hooks, id)
			return nil
		},
		ResetSharedSecretFunc: func(context.Context, int64) (string, error) { return "n3w", nil },
	}
}

// fakeSecrets is a function-field fake of WebhookSecretStore.
type fakeSecrets struct {
	SecretSetFunc       func(ctx context.Context, webhookID int64) (webhook.SecretSet, bool, error)
	PutSecretSetFunc    func(ctx context.Context, webhookID int64, set webhook.SecretSet) error
	DeleteSecretSetFunc func(ctx context.Context, webhookID int64) error
}

var _ WebhookSecretStore = (*fakeSecrets)(nil)

func (f *fakeSecrets) SecretSet(ctx context.Context, id int64) (webhook.SecretSet, bool, error) {
	return f.SecretSetFunc(ctx, id)
}
func (f *fakeSecrets) PutSecretSet(ctx context.Context, id int64, set webhook.SecretSet) error {
	return f.PutSecretSetFunc(ctx, id, set)
}
func (f *fakeSecrets) DeleteSecretSet(ctx context.Context, id int64) error {
	return f.DeleteSecretSetFunc(ctx, id)
}

func newFakeSecrets() *fakeSecrets {
	var mu sync.Mutex
	sets := map[int64]webhook.SecretSet{}
	return &fakeSecrets{
		SecretSetFunc: func(_ context.Context, id int64) (webhook.SecretSet, bool, error) {
			mu.Lock()
			defer mu.Unlock()
			s, ok := sets[id]
			return s, ok, nil
		},
		PutSecretSetFunc: func(_ context.Context, id int64, set webhook.SecretSet) error {
			mu.Lock()
			defer mu.Unlock()
			sets[id] = set
			return nil
		},
		DeleteSecretSetFunc: func(_ context.Context, id int64) error {
			mu.Lock()
			defer mu.Unlock()
			delete(sets, id)
			return nil
		},
	}
}

// fakeBlobs is a function-field fake of Blobs.
type fakeBlobs struct {
	PutFunc func(ctx context.Context, key, contentType string, data []byte) (string, error)
	GetFunc func(ctx context.Context, key string) ([]byte, error)
}

func (f *fakeBlobs) Put(ctx context.Context, key, contentType string, data []byte) (string, error) {
	return f.PutFunc(ctx, key, contentType, data)
}
func (f *fakeBlobs) Get(ctx context.Context, key string) ([]byte, error) { return f.GetFunc(ctx, key) }

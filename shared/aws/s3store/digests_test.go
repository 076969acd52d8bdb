package s3store_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/google/go-cmp/cmp"

	"github.com/fieldaudit/billing-audit/shared/aws/kmssign"
	"github.com/fieldaudit/billing-audit/shared/aws/s3store"
	"github.com/fieldaudit/billing-audit/shared/local/localstack"
	"github.com/fieldaudit/billing-audit/shared/local/localstacktest"
)

// MustLockedBucket starts moto and creates a bucket with Object Lock and a
// COMPLIANCE default retention of one day, as template.yaml's DigestBucket.
func MustLockedBucket(tb testing.TB) (*awss3.Client, string) {
	tb.Helper()
	endpoint := localstacktest.StartMoto(tb)
	ctx := context.Background()
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion("us-east-1"), awsconfig.WithBaseEndpoint(endpoint),
		awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")))
	if err != nil {
		tb.Fatal(err)
	}
	api := awss3.NewFromConfig(cfg, func(o *awss3.Options) { o.UsePathStyle = true })
	bucket := "digests-test"
	if _, err := api.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String(bucket), ObjectLockEnabledForBucket: aws.Bool(true)}); err != nil {
		tb.Fatal(err)
	}
	if _, err := api.PutObjectLockConfiguration(ctx, &awss3.PutObjectLockConfigurationInput{
		Bucket: aws.String(bucket),
		ObjectLockConfiguration: &types.ObjectLockConfiguration{
			ObjectLockEnabled: types.ObjectLockEnabledEnabled,
			Rule:              &types.ObjectLockRule{DefaultRetention: &types.DefaultRetention{Mode: types.ObjectLockRetentionModeCompliance, Days: aws.Int32(1)}},
		},
	}); err != nil {
		tb.Fatal(err)
	}
	return api, bucket
}

// TestDigestsOnMoto stores signed digests in a locked bucket, reads them back,
// and checks that nothing can replace or delete them.
func TestDigestsOnMoto(t *testing.T) {
	api, bucket := MustLockedBucket(t)
	ctx := context.Background()
	const retention = 48 * time.Hour
	d := s3store.NewDigests(api, bucket, "digests/", retention)

	want := map[string][2]string{
		"20261125T150000Z-abc123": {`{"run":"a","head":"01"}`, "sig-a"},
		"20261124T150000Z-fff000": {`{"run":"b","head":"02"}`, "sig-b"},
		"20261126T090000Z-000001": {`{"run":"c","head":"03"}`, "sig-c"},
	}
	for name, ds := range want {
		loc, err := d.Put(ctx, name, []byte(ds[0]), []byte(ds[1]))
		if err != nil {
			t.Fatalf("Put(%s) error = %v", name, err)
		}
		if wantLoc := "s3://" + bucket + "/digests/" + name + ".json"; loc != wantLoc {
			t.Errorf("Put(%s) = %q, want %q", name, loc, wantLoc)
		}
	}
	pem := []byte("-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n")
	if err := d.PutPublicKey(ctx, pem); err != nil {
		t.Fatalf("PutPublicKey() error = %v", err)
	}

	names, err := d.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"20261124T150000Z-fff000", "20261125T150000Z-abc123", "20261126T090000Z-000001"}, names); diff != "" {
		t.Errorf("List() mismatch (-want +got):\n%s", diff)
	}
	for name, ds := range want {
		digest, sig, err := d.Get(ctx, name)
		if err != nil || string(digest) != ds[0] || string(sig) != ds[1] {
			t.Errorf("Get(%s) = %q, %q, %v, want %q, %q", name, digest, sig, err, ds[0], ds[1])
		}
	}

	t.Run("objects are locked in COMPLIANCE mode", func(t *testing.T) {
		for _, tc := range []struct{ key, contentType string }{
			{"digests/20261125T150000Z-abc123.json", "application/json"},
			{"digests/20261125T150000Z-abc123.sig", "application/octet-stream"},
			{"digests/public-key.pem", "application/x-pem-file"},
		} {
			// HeadObject, not GetObjectRetention: moto 5.2 answers the latter with a 500.
			h, err := api.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(tc.key)})
			if err != nil {
				t.Fatalf("HeadObject(%s) error = %v", tc.key, err)
			}
			until := aws.ToTime(h.ObjectLockRetainUntilDate)
			if h.ObjectLockMode != types.ObjectLockModeCompliance || until.Sub(time.Now().Add(retention)).Abs() > time.Minute {
				t.Errorf("%s lock = %s until %s, want COMPLIANCE until about now+%s", tc.key, h.ObjectLockMode, until, retention)
			}
			if got := aws.ToString(h.ContentType); got != tc.contentType {
				t.Errorf("%s content type = %q, want %q", tc.key, got, tc.contentType)
			}
		}
	})

	t.Run("a second Put of a name is refused", func(t *testing.T) {
		_, err := d.Put(ctx, "20261125T150000Z-abc123", []byte(`{"run":"forged"}`), []byte("forged"))
		if !errors.Is(err, s3store.ErrDigestExists) {
			t.Fatalf("Put(existing) error = %v, want ErrDigestExists", err)
		}
		digest, sig, err := d.Get(ctx, "20261125T150000Z-abc123")
		if err != nil || string(digest) != want["20261125T150000Z-abc123"][0] || string(sig) != "sig-a" {
			t.Errorf("after the refused Put, Get() = %q, %q, %v, want the original", digest, sig, err)
		}
	})

	t.Run("a Put repeated with the same bytes finishes, it is not refused", func(t *testing.T) {
		name := "20261125T150000Z-abc123"
		if _, err := d.Put(ctx, name, []byte(want[name][0]), []byte("sig-a")); err != nil {
			t.Errorf("Put(same digest again) error = %v, want nil", err)
		}
	})

	t.Run("public key is written once", func(t *testing.T) {
		if err := d.PutPublicKey(ctx, pem); err != nil {
			t.Errorf("PutPublicKey(same key) error = %v, want nil", err)
		}
		other := bytes.Replace(pem, []byte("MFkw"), []byte("MFkX"), 1)
		if err := d.PutPublicKey(ctx, other); !errors.Is(err, s3store.ErrDigestExists) {
			t.Errorf("PutPublicKey(other key) error = %v, want ErrDigestExists", err)
		}
	})

	t.Run("delete of a locked version is refused", func(t *testing.T) {
		key := aws.String("digests/20261125T150000Z-abc123.json")
		h, err := api.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String(bucket), Key: key})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(h.VersionId) == "" {
			t.Fatal("object has no version id: the bucket is not versioned")
		}
		_, err = api.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String(bucket), Key: key, VersionId: h.VersionId})
		if err == nil {
			t.Fatal("DeleteObject(locked version) succeeded: moto did not enforce Object Lock")
		}
		t.Logf("moto refused DeleteObject of the locked version: %v", err)
		if _, _, err := d.Get(ctx, "20261125T150000Z-abc123"); err != nil {
			t.Errorf("Get() after the refused delete error = %v", err)
		}
	})
}

// TestDigestsOnTemplateStack signs a digest with the key of template.yaml and
// stores it in the template's bucket, as the Report function does, then
// verifies it with the stored public key alone.
func TestDigestsOnTemplateStack(t *testing.T) {
	endpoint := localstacktest.StartMoto(t)
	ctx := context.Background()
	_, file, _, _ := runtime.Caller(0)
	st, err := localstack.DeployFile(ctx, endpoint, "us-east-1", filepath.Join(filepath.Dir(file), "..", "..", "..", "template.yaml"),
		localstack.Options{StackName: "digests", Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion("us-east-1"), awsconfig.WithBaseEndpoint(endpoint),
		awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")))
	if err != nil {
		t.Fatal(err)
	}
	days, err := strconv.Atoi(st.Env["DIGEST_RETENTION_DAYS"])
	if err != nil {
		t.Fatalf("DIGEST_RETENTION_DAYS = %q: %v", st.Env["DIGEST_RETENTION_DAYS"], err)
	}
	signer := kmssign.New(kms.NewFromConfig(cfg), st.Env["DIGEST_KEY_ID"])
	d := s3store.NewDigests(awss3.NewFromConfig(cfg, func(o *awss3.Options) { o.UsePathStyle = true }), st.Env["DIGEST_BUCKET"], "digests/",
		time.Duration(days)*24*time.Hour)

	pubPEM, err := signer.PublicKeyPEM(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.PutPublicKey(ctx, pubPEM); err != nil {
		t.Fatal(err)
	}
	digest := []byte(`{"run":"20261125T150000Z-abc123","rows":1042,"head":"9f2c"}`)
	sig, err := signer.Sign(ctx, digest)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Put(ctx, "20261125T150000Z-abc123", digest, sig); err != nil {
		t.Fatal(err)
	}

	gotDigest, gotSig, err := d.Get(ctx, "20261125T150000Z-abc123")
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(pubPEM)
	if block == nil {
		t.Fatalf("public key %q is not PEM", pubPEM)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(gotDigest)
	if ec, ok := pub.(*ecdsa.PublicKey); !ok || !ecdsa.VerifyASN1(ec, h[:], gotSig) {
		t.Errorf("stored digest does not verify with the stored public key (%T)", pub)
	}
}

// fakeS3 is a function-field fake of s3store.DigestsAPI.
type fakeS3 struct {
	put  func(*awss3.PutObjectInput) (*awss3.PutObjectOutput, error)
	get  func(*awss3.GetObjectInput) (*awss3.GetObjectOutput, error)
	list func(*awss3.ListObjectsV2Input) (*awss3.ListObjectsV2Output, error)
}

func (f *fakeS3) PutObject(_ context.Context, in *awss3.PutObjectInput, _ ...func(*awss3.Options)) (*awss3.PutObjectOutput, error) {
	return f.put(in)
}

func (f *fakeS3) GetObject(_ context.Context, in *awss3.GetObjectInput, _ ...func(*awss3.Options)) (*awss3.GetObjectOutput, error) {
	return f.get(in)
}

func (f *fakeS3) ListObjectsV2(_ context.Context, in *awss3.ListObjectsV2Input, _ ...func(*awss3.Options)) (*awss3.ListObjectsV2Output, error) {
	return f.list(in)
}

var _ s3store.DigestsAPI = (*fakeS3)(nil)

func TestDigestsPutRequest(t *testing.T) {
	tests := []struct {
		name      string
		retention time.Duration
		wantLock  bool
	}{
		{"retention locks each object", 24 * time.Hour, true},
		{"no retention: the bucket default applies", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var puts []*awss3.PutObjectInput
			d := s3store.NewDigests(&fakeS3{put: func(in *awss3.PutObjectInput) (*awss3.PutObjectOutput, error) {
				puts = append(puts, in)
				return &awss3.PutObjectOutput{}, nil
			}}, "b", "digests/", tt.retention)
			if _, err := d.Put(context.Background(), "n", []byte("{}"), []byte("s")); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, in := range puts {
				locked := in.ObjectLockMode == types.ObjectLockModeCompliance && in.ObjectLockRetainUntilDate != nil
				got = append(got, fmt.Sprintf("%s %s %s if-none-match=%s locked=%v",
					aws.ToString(in.Key), aws.ToString(in.ContentType), in.ChecksumAlgorithm, aws.ToString(in.IfNoneMatch), locked))
			}
			// The signature first: a listed digest always has its signature.
			want := []string{
				fmt.Sprintf("digests/n.sig application/octet-stream SHA256 if-none-match=* locked=%v", tt.wantLock),
				fmt.Sprintf("digests/n.json application/json SHA256 if-none-match=* locked=%v", tt.wantLock),
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Put() requests mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDigestsErrors(t *testing.T) {
	boom := errors.New("AccessDenied")
	failPut := &fakeS3{put: func(*awss3.PutObjectInput) (*awss3.PutObjectOutput, error) { return nil, boom }}
	tests := []struct {
		name    string
		call    func(*s3store.Digests) error
		api     *fakeS3
		want    string
		wantErr error
	}{
		{name: "empty name", api: failPut, want: "digest name is empty",
			call: func(d *s3store.Digests) error {
				_, err := d.Put(context.Background(), "", []byte("{}"), []byte("s"))
				return err
			}},
		{name: "empty signature", api: failPut, want: "empty digest or signature",
			call: func(d *s3store.Digests) error {
				_, err := d.Put(context.Background(), "n", []byte("{}"), nil)
				return err
			}},
		{name: "put fails", api: failPut, want: "put signature of digest n: put s3://b/digests/n.sig", wantErr: boom,
			call: func(d *s3store.Digests) error {
				_, err := d.Put(context.Background(), "n", []byte("{}"), []byte("s"))
				return err
			}},
		{name: "list fails", want: "list digests in s3://b/digests/", wantErr: boom,
			api:  &fakeS3{list: func(*awss3.ListObjectsV2Input) (*awss3.ListObjectsV2Output, error) { return nil, boom }},
			call: func(d *s3store.Digests) error { _, err := d.List(context.Background()); return err }},
		{name: "signature missing", want: "get signature of digest n", wantErr: boom,
			api: &fakeS3{get: func(in *awss3.GetObjectInput) (*awss3.GetObjectOutput, error) {
				if strings.HasSuffix(aws.ToString(in.Key), ".sig") {
					return nil, boom
				}
				return &awss3.GetObjectOutput{Body: io.NopCloser(strings.NewReader("{}"))}, nil
			}},
			call: func(d *s3store.Digests) error { _, _, err := d.Get(context.Background(), "n"); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call(s3store.NewDigests(tt.api, "b", "digests/", time.Hour))
			if err == nil || !strings.Contains(err.Error(), tt.want) || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Errorf("%s: error = %v, want one containing %q (wrapping %v)", tt.name, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestDigestsListPages(t *testing.T) {
	pages := map[string]*awss3.ListObjectsV2Output{
		"": {IsTruncated: aws.Bool(true), NextContinuationToken: aws.String("t2"), Contents: []types.Object{
			{Key: aws.String("digests/b.json")}, {Key: aws.String("digests/b.sig")}, {Key: aws.String("digests/public-key.pem")},
		}},
		"t2": {IsTruncated: aws.Bool(false), Contents: []types.Object{
			{Key: aws.String("digests/a.json")}, {Key: aws.String("digests/a.sig")}, {Key: aws.String("digests/c.sig")},
		}},
	}
	var calls []string
	d := s3store.NewDigests(&fakeS3{list: func(in *awss3.ListObjectsV2Input) (*awss3.ListObjectsV2Output, error) {
		calls = append(calls, aws.ToString(in.Bucket)+" "+aws.ToString(in.Prefix)+" "+aws.ToString(in.ContinuationToken))
		return pages[aws.ToString(in.ContinuationToken)], nil
	}}, "b", "digests/", 0)
	got, err := d.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a", "b"}, got); diff != "" {
		t.Errorf("List() mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"b digests/ ", "b digests/ t2"}, calls); diff != "" {
		t.Errorf("ListObjectsV2 calls mismatch (-want +got):\n%s", diff)
	}
}

package sqsqueue_test

import (
	"context"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/aws/s3store"
	"github.com/fieldaudit/billing-audit/shared/aws/sqsqueue"
	"github.com/fieldaudit/billing-audit/shared/local/localstack"
	"github.com/fieldaudit/billing-audit/shared/local/localstacktest"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
)

func templatePath(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "template.yaml")
}

// TestBatchQueueOnMoto sends a small batch inline and a large one through S3,
// on the queue and bucket that template.yaml defines, and reads both back.
func TestBatchQueueOnMoto(t *testing.T) {
	endpoint := localstacktest.StartMoto(t)
	ctx := context.Background()
	st, err := localstack.DeployFile(ctx, endpoint, "us-east-1", templatePath(t), localstack.Options{StackName: "adapters", Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion("us-east-1"), awsconfig.WithBaseEndpoint(endpoint),
		awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")))
	if err != nil {
		t.Fatal(err)
	}
	sqsc := awssqs.NewFromConfig(cfg)
	blobs := s3store.New(awss3.NewFromConfig(cfg, func(o *awss3.Options) { o.UsePathStyle = true }), st.Env["REPORT_BUCKET"])
	url := st.Env["ANALYSIS_QUEUE_URL"]
	if url == "" || st.Env["REPORT_BUCKET"] == "" {
		t.Fatalf("stack env lacks the queue or bucket: %v", st.Env)
	}
	q := sqsqueue.NewBatchQueue(sqsc, url, blobs)

	small := pipeline.Batch{ID: "run-1/1", RunID: "run-1", Sheet: pipeline.SheetRef{ID: 7, Name: "Crew A"},
		Rows: []audit.RowSnapshot{{SheetID: 7, RowID: 1, Values: map[string]string{"Quantity": "3"}}}}
	big := pipeline.Batch{ID: "run-1/2", RunID: "run-1", Sheet: pipeline.SheetRef{ID: 7, Name: "Crew A"}}
	for i := range 3000 {
		big.Rows = append(big.Rows, audit.RowSnapshot{SheetID: 7, RowID: int64(i + 2), Permalink: "https://app.smartsheet.com/b/home?lx=" + strings.Repeat("x", 40),
			Values: map[string]string{"Quantity": "3", "Units Total Price": "1234.50", "Work Request #": "90412337"}})
	}
	for _, b := range []pipeline.Batch{small, big} {
		if err := q.SendBatch(ctx, b); err != nil {
			t.Fatalf("SendBatch(%s) error = %v", b.ID, err)
		}
	}
	got := map[string]pipeline.Batch{}
	for deadline := time.Now().Add(20 * time.Second); len(got) < 2 && time.Now().Before(deadline); {
		out, err := sqsc.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.Messages {
			if len(*m.Body) > pipeline.MaxInlineBatch {
				t.Errorf("message of %d bytes is over the inline limit", len(*m.Body))
			}
			b, err := pipeline.DecodeBatch(ctx, []byte(*m.Body), blobs)
			if err != nil {
				t.Fatalf("DecodeBatch() error = %v", err)
			}
			got[b.ID] = b
		}
	}
	if len(got["run-1/1"].Rows) != 1 || len(got["run-1/2"].Rows) != 3000 {
		t.Fatalf("received batches with %d and %d rows, want 1 and 3000", len(got["run-1/1"].Rows), len(got["run-1/2"].Rows))
	}
	if v := got["run-1/2"].Rows[2999].Values["Units Total Price"]; v != "1234.50" {
		t.Errorf("large batch row value = %q, want 1234.50 (exact text)", v)
	}
	if data, err := blobs.Get(ctx, "batches/run-1/2.json"); err != nil || len(data) <= pipeline.MaxInlineBatch {
		t.Errorf("the large batch is not in the bucket under batches/: %d bytes, %v", len(data), err)
	}
	if _, err := pipeline.DecodeBatch(ctx, []byte(`{"nothing":1}`), blobs); err == nil {
		t.Error("DecodeBatch(empty envelope) succeeded")
	}
}

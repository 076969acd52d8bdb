package sqsqueue_test

import (
	"context"
	"github.com/google/go-cmp/cmp"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/fieldaudit/billing-audit/shared/aws/sqsqueue"
	"github.com/fieldaudit/billing-audit/shared/local/localstack"
	"github.com/fieldaudit/billing-audit/shared/local/localstacktest"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
)

func templatePath(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "template.yaml")
}

// TestSheetQueueOnMoto sends sheet work on the queue that template.yaml
// defines and reads it back: small messages, whatever the sheet.
func TestSheetQueueOnMoto(t *testing.T) {
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
	url := st.Env["ANALYSIS_QUEUE_URL"]
	if url == "" {
		t.Fatalf("stack env lacks the analysis queue: %v", st.Env)
	}
	q := sqsqueue.NewSheetQueue(sqsc, url)
	start := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	want := []pipeline.SheetWork{
		{RunID: "run-1", Sheet: pipeline.SheetRef{ID: 7, Name: "Crew A"}, StartedAt: start},
		{RunID: "run-1", Sheet: pipeline.SheetRef{ID: 8, Name: "Crew B " + strings.Repeat("x", 40)}, StartedAt: start, Resume: true, TestMode: true},
	}
	for _, w := range want {
		if err := q.SendSheetWork(ctx, w); err != nil {
			t.Fatalf("SendSheetWork(%d) error = %v", w.Sheet.ID, err)
		}
	}
	got := map[int64]pipeline.SheetWork{}
	for deadline := time.Now().Add(20 * time.Second); len(got) < 2 && time.Now().Before(deadline); {
		out, err := sqsc.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.Messages {
			if n := len(*m.Body); n > 1024 {
				t.Errorf("a sheet's work is %d bytes, want under 1 KB", n)
			}
			w, ok, err := pipeline.DecodeSheetWork([]byte(*m.Body))
			if !ok || err != nil {
				t.Fatalf("DecodeSheetWork(%s) = %v, %v", *m.Body, ok, err)
			}
			got[w.Sheet.ID] = w
		}
	}
	for _, w := range want {
		if diff := cmp.Diff(w, got[w.Sheet.ID]); diff != "" {
			t.Errorf("sheet %d's work (-sent +received):\n%s", w.Sheet.ID, diff)
		}
	}
}

package snsalert_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/aws/snsalert"
	"github.com/fieldaudit/billing-audit/shared/local/localstack"
	"github.com/fieldaudit/billing-audit/shared/local/localstacktest"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
	"github.com/shopspring/decimal"
)

var oneAlert = pipeline.Alert{
	ChangeID: "c0ffee", Kind: audit.KindValueChanged, SheetID: 7, Sheet: "Crew A — North", RowNumber: 12,
	WorkRequest: "WR-1001", Column: "Units Total Price", Old: "1200.00", New: "6200.00",
	Impact: decimal.NewFromInt(5000), Risk: audit.RiskHigh, Who: "Kim Lee <kim.lee@fieldops.example.com>",
	When:         time.Date(2026, 11, 25, 14, 5, 0, 0, time.UTC),
	SourceRowURL: "https://app.smartsheet.com/sheets/abc?rowId=12", AuditRowURL: "https://app.smartsheet.com/sheets/log?rowId=99",
}

func TestMessage(t *testing.T) {
	long := oneAlert
	long.Sheet = strings.Repeat("Ж", 200)
	tests := []struct {
		name        string
		n           pipeline.Notice
		wantSubject string
		wantEmail   []string
		wantSMS     string
	}{
		{name: "one alert", n: pipeline.Notice{Alerts: []pipeline.Alert{oneAlert}},
			wantSubject: "HIGH risk unauthorized change: +$5,000.00 on Crew A ? North",
			wantEmail:   []string{"Work Request #: WR-1001", "Change: 1200.00 → 6200.00", "Who: Kim Lee", "Source row: " + oneAlert.SourceRowURL, "Audit row: " + oneAlert.AuditRowURL},
			wantSMS:     "HIGH risk unauthorized change: +$5,000.00 on Crew A — North. WR WR-1001, Units Total Price: 1200.00 → 6200.00, by Kim Lee <kim.lee@fieldops.example.com>"},
		{name: "a subject SNS accepts", n: pipeline.Notice{Alerts: []pipeline.Alert{long}},
			wantSubject: "HIGH risk unauthorized change: +$5,000.00 on " + strings.Repeat("?", 51) + "..."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			subject, msg, err := snsalert.Message(tt.n, nil)
			if err != nil {
				t.Fatal(err)
			}
			if subject != tt.wantSubject {
				t.Errorf("subject = %q, want %q", subject, tt.wantSubject)
			}
			if len(subject) >= 100 {
				t.Errorf("subject has %d characters, want fewer than 100", len(subject))
			}
			var per map[string]string
			if err := json.Unmarshal([]byte(msg), &per); err != nil {
				t.Fatalf("message is not SNS's per-protocol JSON: %v", err)
			}
			if per["default"] == "" || per["email"] != per["default"] {
				t.Errorf("default and email = %q, %q, want the same body", per["default"], per["email"])
			}
			for _, w := range tt.wantEmail {
				if !strings.Contains(per["email"], w) {
					t.Errorf("email lacks %q:\n%s", w, per["email"])
				}
			}
			if tt.wantSMS != "" && per["sms"] != tt.wantSMS {
				t.Errorf("sms = %q, want %q", per["sms"], tt.wantSMS)
			}
			if n := len([]rune(per["sms"])); n > 160 {
				t.Errorf("sms has %d characters, want at most 160", n)
			}
		})
	}
}

// TestPublishToTemplateTopic publishes through the adapter to the alert
// topic of template.yaml deployed on moto (ALERT_TOPIC_ARN as the functions
// get it); a queue subscribed to the topic receives the notice.
func TestPublishToTemplateTopic(t *testing.T) {
	endpoint := localstacktest.StartMoto(t)
	ctx := context.Background()
	_, file, _, _ := runtime.Caller(0)
	st, err := localstack.DeployFile(ctx, endpoint, "us-east-1", filepath.Join(filepath.Dir(file), "..", "..", "..", "template.yaml"),
		localstack.Options{StackName: "alerts", Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	topic := st.Env["ALERT_TOPIC_ARN"]
	if !strings.HasPrefix(topic, "arn:aws:sns:") {
		t.Fatalf("ALERT_TOPIC_ARN = %q, want the topic's ARN", topic)
	}
	if st.Env["ALERT_WEBHOOKS_SECRET_ARN"] == "" || st.Env["ALERT_MIN_RISK"] != "HIGH" || st.Env["ALERT_DIGEST_OVER"] != "10" {
		t.Errorf("alert environment = %q, %q, %q; want the secret's ARN, HIGH and 10", st.Env["ALERT_WEBHOOKS_SECRET_ARN"],
			st.Env["ALERT_MIN_RISK"], st.Env["ALERT_DIGEST_OVER"])
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion("us-east-1"), awsconfig.WithBaseEndpoint(endpoint),
		awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")))
	if err != nil {
		t.Fatal(err)
	}
	snsc, sqsc := sns.NewFromConfig(cfg), awssqs.NewFromConfig(cfg)
	q, err := sqsc.CreateQueue(ctx, &awssqs.CreateQueueInput{QueueName: aws.String("alert-inbox")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := snsc.Subscribe(ctx, &sns.SubscribeInput{TopicArn: aws.String(topic), Protocol: aws.String("sqs"),
		Endpoint: aws.String("arn:aws:sqs:us-east-1:123456789012:alert-inbox")}); err != nil {
		t.Fatal(err)
	}

	if err := snsalert.New(snsc, topic, nil).Notify(ctx, pipeline.Notice{Alerts: []pipeline.Alert{oneAlert}, Total: oneAlert.Impact}); err != nil {
		t.Fatalf("Notify() = %v", err)
	}
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		out, err := sqsc.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.Messages {
			var n struct{ Type, TopicArn, Subject, Message string }
			if err := json.Unmarshal([]byte(*m.Body), &n); err != nil {
				t.Fatalf("queue got %q: %v", *m.Body, err)
			}
			if n.Type != "Notification" || n.TopicArn != topic {
				t.Errorf("got %s from %s, want a Notification from %s", n.Type, n.TopicArn, topic)
			}
			if want := "HIGH risk unauthorized change: +$5,000.00 on Crew A ? North"; n.Subject != want {
				t.Errorf("subject = %q, want %q", n.Subject, want)
			}
			for _, w := range []string{"Sheet: Crew A — North", "Work Request #: WR-1001", "Money: +$5,000.00", "Risk: HIGH",
				"Audit row: " + oneAlert.AuditRowURL} {
				if !strings.Contains(n.Message, w) {
					t.Errorf("message lacks %q:\n%s", w, n.Message)
				}
			}
			return
		}
	}
	t.Fatal("the alert did not reach the topic's subscriber")
}

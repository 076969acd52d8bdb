// Package snsalert is the SNS alert channel: each notice is published to
// the stack's alert topic (template.yaml AlertTopic), whose subscribers get
// it by e-mail (the plain-text form, shared/alert.Text) or by SMS (one line).
package snsalert

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/fieldaudit/billing-audit/shared/alert"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
)

// API is the part of the SNS client used here.
type API interface {
	Publish(ctx context.Context, in *sns.PublishInput, optFns ...func(*sns.Options)) (*sns.PublishOutput, error)
}

var _ API = (*sns.Client)(nil)

// Topic is a pipeline.Notifier publishing to one topic. The SDK retries a
// throttled or failed publish itself (within the caller's deadline).
type Topic struct {
	api API
	arn string
	loc *time.Location
}

var _ pipeline.Notifier = (*Topic)(nil)

// New publishes to the topic arn (ALERT_TOPIC_ARN), showing times in loc
// (nil: UTC).
func New(api API, arn string, loc *time.Location) *Topic {
	if loc == nil {
		loc = time.UTC
	}
	return &Topic{api: api, arn: arn, loc: loc}
}

// SNS's limits: a subject is under 100 ASCII characters without line
// breaks; an SMS is best kept to one 160-character message.
const (
	maxSubject = 99
	maxSMS     = 160
)

// Message is what one notice publishes: the subject of an e-mail and, per
// protocol (MessageStructure json), the e-mail's body and the SMS's text.
func Message(n pipeline.Notice, loc *time.Location) (subject string, message string, err error) {
	subject, body := alert.Text(n, loc)
	sms := subject
	if !n.Digest && len(n.Alerts) == 1 {
		a := n.Alerts[0]
		sms = fmt.Sprintf("%s. WR %s, %s, by %s", subject, alert.WorkRequest(a), alert.What(a), alert.Who(a))
	}
	b, err := json.Marshal(map[string]string{"default": body, "email": body, "sms": cut(sms, maxSMS)})
	if err != nil {
		return "", "", err
	}
	return asciiSubject(subject), string(b), nil
}

// Notify publishes n once.
func (t *Topic) Notify(ctx context.Context, n pipeline.Notice) error {
	subject, msg, err := Message(n, t.loc)
	if err != nil {
		return fmt.Errorf("sns topic %s: encode: %w", t.arn, err)
	}
	if _, err := t.api.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(t.arn), Subject: aws.String(subject),
		Message: aws.String(msg), MessageStructure: aws.String("json")}); err != nil {
		return fmt.Errorf("sns topic %s: publish: %w", t.arn, err)
	}
	return nil
}

// asciiSubject keeps what SNS accepts in a subject.
func asciiSubject(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\r' || r == '\t':
			return ' '
		case r > unicode.MaxASCII || !unicode.IsPrint(r):
			return '?'
		}
		return r
	}, s)
	if len(s) > maxSubject {
		s = s[:maxSubject-3] + "..."
	}
	return s
}

func cut(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

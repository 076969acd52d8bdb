package alert

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/fieldaudit/billing-audit/shared/pipeline"
)

// Slack posts notices to a Slack incoming webhook as Block Kit messages.
type Slack struct{ w webhook }

var _ pipeline.Notifier = (*Slack)(nil)

// NewSlack is the channel of ALERT_SLACK_WEBHOOK_URL.
func NewSlack(webhookURL string, opts Options) *Slack {
	return &Slack{w: webhook{channel: "slack", url: webhookURL, opts: opts.withDefaults()}}
}

// Notify posts n; see Options for the retries.
func (s *Slack) Notify(ctx context.Context, n pipeline.Notice) error {
	return s.w.send(ctx, SlackMessage(n, s.w.opts))
}

// The Block Kit objects used here (https://api.slack.com/reference/block-kit).
type (
	slackMessage struct {
		Text   string       `json:"text"` // the notification's text; blocks are what is shown
		Blocks []slackBlock `json:"blocks"`
	}
	slackBlock struct {
		Type     string         `json:"type"` // header, section, context, actions, divider
		Text     *slackText     `json:"text,omitempty"`
		Fields   []slackText    `json:"fields,omitempty"`
		Elements []slackElement `json:"elements,omitempty"`
	}
	slackText struct {
		Type  string `json:"type"` // plain_text or mrkdwn
		Text  string `json:"text"`
		Emoji bool   `json:"emoji,omitempty"`
	}
	// slackElement is a context element (a text object) or an actions
	// element (a button).
	slackElement struct {
		Type     string `json:"type"`
		Text     any    `json:"text"` // string for mrkdwn, *slackText for a button
		URL      string `json:"url,omitempty"`
		ActionID string `json:"action_id,omitempty"`
		Style    string `json:"style,omitempty"`
	}
)

// Block Kit's limits that a change's text could reach.
const (
	slackHeaderMax  = 150
	slackFieldMax   = 2000
	slackSectionMax = 3000
	slackButtonMax  = 75
	slackBlocksMax  = 50
)

// SlackMessage is n as a Block Kit message: for one alert a header, a
// section whose fields name the sheet, Work Request #, column, old → new,
// money, who, when and risk, a context line with the Change ID and buttons
// opening the source row and the audit row; for a digest a header, a
// section per change (up to opts.DigestItems), a count of the rest and a
// button opening the audit log.
func SlackMessage(n pipeline.Notice, opts Options) any {
	opts = opts.withDefaults()
	loc := opts.Location
	var m slackMessage
	var buttons []slackElement
	if n.Digest {
		m.Text = DigestTitle(n)
		m.Blocks = append(m.Blocks, slackHeader(m.Text))
		shown := min(len(n.Alerts), opts.DigestItems, slackBlocksMax-5)
		for _, a := range n.Alerts[:shown] {
			line := fmt.Sprintf("*%s* · WR %s · %s\n%s · *%s* · %s, %s", esc(a.Sheet), esc(WorkRequest(a)), esc(What(a)),
				esc(Money(a)), a.Risk, esc(Who(a)), esc(When(a, loc)))
			if a.AuditRowURL != "" {
				line += fmt.Sprintf(" · <%s|audit row>", a.AuditRowURL)
			}
			if a.SourceRowURL != "" {
				line += fmt.Sprintf(" · <%s|source row>", a.SourceRowURL)
			}
			m.Blocks = append(m.Blocks, slackBlock{Type: "section", Text: &slackText{Type: "mrkdwn", Text: cut(line, slackSectionMax)}})
		}
		if rest := len(n.Alerts) - shown; rest > 0 {
			m.Blocks = append(m.Blocks, slackContext(fmt.Sprintf("and %d more on the audit log", rest)))
		}
		if n.AuditSheetURL != "" {
			buttons = append(buttons, slackButton("Open the audit log", n.AuditSheetURL, "open_audit_log"))
		}
	} else if len(n.Alerts) > 0 {
		a := n.Alerts[0]
		m.Text = fmt.Sprintf("%s — %s, WR %s, by %s", Title(a), What(a), WorkRequest(a), Who(a))
		m.Blocks = append(m.Blocks, slackHeader(Title(a)), slackBlock{
			Type: "section",
			Text: &slackText{Type: "mrkdwn", Text: cut(fmt.Sprintf("*%s* changed after its week closed.", esc(What(a))), slackSectionMax)},
			Fields: []slackText{
				slackField("Sheet", a.Sheet), slackField("Work Request #", WorkRequest(a)),
				slackField("Column", orBlank(a.Column)), slackField("Old → New", orBlank(a.Old)+" → "+orBlank(a.New)),
				slackField("Money", Money(a)), slackField("Who", Who(a)),
				slackField("When", When(a, loc)), slackField("Risk", string(a.Risk)),
			},
		}, slackContext(fmt.Sprintf("Change ID %s · row %d", a.ChangeID, a.RowNumber)))
		if a.SourceRowURL != "" {
			buttons = append(buttons, slackButton("Open the source row", a.SourceRowURL, "open_source_row"))
		}
		if a.AuditRowURL != "" {
			buttons = append(buttons, slackButton("Open the audit row", a.AuditRowURL, "open_audit_row"))
		}
	}
	if len(buttons) > 0 {
		m.Blocks = append(m.Blocks, slackBlock{Type: "actions", Elements: buttons})
	}
	return m
}

func slackHeader(s string) slackBlock {
	return slackBlock{Type: "header", Text: &slackText{Type: "plain_text", Text: cut(s, slackHeaderMax), Emoji: true}}
}

func slackField(name, value string) slackText {
	return slackText{Type: "mrkdwn", Text: cut("*"+name+"*\n"+esc(value), slackFieldMax)}
}

func slackContext(s string) slackBlock {
	return slackBlock{Type: "context", Elements: []slackElement{{Type: "mrkdwn", Text: esc(s)}}}
}

func slackButton(label, url, id string) slackElement {
	return slackElement{Type: "button", Text: &slackText{Type: "plain_text", Text: cut(label, slackButtonMax)}, URL: url, ActionID: id}
}

// esc escapes the three characters mrkdwn reserves.
func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// cut shortens s to at most n characters, marking the cut.
func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

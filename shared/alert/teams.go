package alert

import (
	"context"
	"fmt"

	"github.com/fieldaudit/billing-audit/shared/pipeline"
)

// Teams posts notices to a Teams Workflows webhook ("Post to a channel when
// a webhook request is received"): a message whose one attachment is an
// Adaptive Card. Workflows take Adaptive Cards only, not the retired
// connectors' MessageCard.
type Teams struct{ w webhook }

var _ pipeline.Notifier = (*Teams)(nil)

// NewTeams is the channel of ALERT_TEAMS_WEBHOOK_URL.
func NewTeams(webhookURL string, opts Options) *Teams {
	return &Teams{w: webhook{channel: "teams", url: webhookURL, opts: opts.withDefaults()}}
}

// Notify posts n; see Options for the retries.
func (t *Teams) Notify(ctx context.Context, n pipeline.Notice) error {
	return t.w.send(ctx, TeamsMessage(n, t.w.opts))
}

// AdaptiveCardContentType is the attachment's content type.
const AdaptiveCardContentType = "application/vnd.microsoft.card.adaptive"

// AdaptiveCardVersion is the schema version the cards use: 1.4 is what
// Teams renders on every client.
const AdaptiveCardVersion = "1.4"

type (
	teamsMessage struct {
		Type        string            `json:"type"` // message
		Attachments []teamsAttachment `json:"attachments"`
	}
	teamsAttachment struct {
		ContentType string       `json:"contentType"`
		ContentURL  *string      `json:"contentUrl"` // null
		Content     adaptiveCard `json:"content"`
	}
	adaptiveCard struct {
		Schema  string         `json:"$schema"`
		Type    string         `json:"type"` // AdaptiveCard
		Version string         `json:"version"`
		Body    []cardElement  `json:"body"`
		Actions []cardAction   `json:"actions,omitempty"`
		MSTeams map[string]any `json:"msteams,omitempty"`
	}
	// cardElement is a TextBlock or a FactSet.
	cardElement struct {
		Type   string     `json:"type"`
		Text   string     `json:"text,omitempty"`
		Weight string     `json:"weight,omitempty"`
		Size   string     `json:"size,omitempty"`
		Color  string     `json:"color,omitempty"`
		Wrap   bool       `json:"wrap,omitempty"`
		Facts  []cardFact `json:"facts,omitempty"`
	}
	cardFact struct {
		Title string `json:"title"`
		Value string `json:"value"`
	}
	cardAction struct {
		Type  string `json:"type"` // Action.OpenUrl
		Title string `json:"title"`
		URL   string `json:"url"`
	}
)

// TeamsMessage is n as a Workflows message: an Adaptive Card whose body is
// a headline and, for one alert, a FactSet naming the sheet, Work Request #,
// column, old → new, money, who, when, risk and Change ID, with
// Action.OpenUrl buttons for the source row and the audit row; for a digest,
// one line per change (up to opts.DigestItems), a count of the rest and a
// button for the audit log.
func TeamsMessage(n pipeline.Notice, opts Options) any {
	opts = opts.withDefaults()
	loc := opts.Location
	card := adaptiveCard{Schema: "http://adaptivecards.io/schemas/adaptive-card.json", Type: "AdaptiveCard",
		Version: AdaptiveCardVersion, MSTeams: map[string]any{"width": "Full"}}
	headline := func(s string) cardElement {
		return cardElement{Type: "TextBlock", Text: s, Weight: "Bolder", Size: "Medium", Color: "Attention", Wrap: true}
	}
	if n.Digest {
		card.Body = append(card.Body, headline(DigestTitle(n)))
		shown := min(len(n.Alerts), opts.DigestItems)
		for _, a := range n.Alerts[:shown] {
			line := Line(a, loc)
			if a.AuditRowURL != "" {
				line += fmt.Sprintf(" · [audit row](%s)", a.AuditRowURL)
			}
			card.Body = append(card.Body, cardElement{Type: "TextBlock", Text: line, Wrap: true})
		}
		if rest := len(n.Alerts) - shown; rest > 0 {
			card.Body = append(card.Body, cardElement{Type: "TextBlock", Text: fmt.Sprintf("and %d more on the audit log", rest), Wrap: true})
		}
		if n.AuditSheetURL != "" {
			card.Actions = append(card.Actions, cardAction{Type: "Action.OpenUrl", Title: "Open the audit log", URL: n.AuditSheetURL})
		}
	} else if len(n.Alerts) > 0 {
		a := n.Alerts[0]
		card.Body = append(card.Body, headline(Title(a)),
			cardElement{Type: "TextBlock", Text: What(a) + " changed after its week closed.", Wrap: true},
			cardElement{Type: "FactSet", Facts: []cardFact{
				{"Sheet", a.Sheet}, {"Work Request #", WorkRequest(a)}, {"Column", orBlank(a.Column)},
				{"Old → New", orBlank(a.Old) + " → " + orBlank(a.New)}, {"Money", Money(a)}, {"Who", Who(a)},
				{"When", When(a, loc)}, {"Risk", string(a.Risk)}, {"Change ID", a.ChangeID},
			}})
		if a.SourceRowURL != "" {
			card.Actions = append(card.Actions, cardAction{Type: "Action.OpenUrl", Title: "Open the source row", URL: a.SourceRowURL})
		}
		if a.AuditRowURL != "" {
			card.Actions = append(card.Actions, cardAction{Type: "Action.OpenUrl", Title: "Open the audit row", URL: a.AuditRowURL})
		}
	}
	return teamsMessage{Type: "message", Attachments: []teamsAttachment{{ContentType: AdaptiveCardContentType, Content: card}}}
}

package alert_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// Structural checks of the payloads, against the formats' rules: a message
// that breaks one is refused by Slack (invalid_blocks) or not rendered by
// Teams. They return what a test asserts field by field next.

func str(v any) string { s, _ := v.(string); return s }

func obj(v any) map[string]any { m, _ := v.(map[string]any); return m }

func list(v any) []any { l, _ := v.([]any); return l }

// slackBlocks checks a Block Kit message and returns its blocks.
func slackBlocks(t *testing.T, msg map[string]any) []map[string]any {
	t.Helper()
	if str(msg["text"]) == "" {
		t.Errorf("Slack message without a text (the notification's)")
	}
	raw := list(msg["blocks"])
	if len(raw) == 0 || len(raw) > 50 {
		t.Fatalf("Slack message has %d blocks, want 1 to 50", len(raw))
	}
	var blocks []map[string]any
	for i, b := range raw {
		blk := obj(b)
		blocks = append(blocks, blk)
		where := fmt.Sprintf("block %d (%s)", i, str(blk["type"]))
		textObj := func(v any, types []string, max int) {
			o := obj(v)
			if !slices.Contains(types, str(o["type"])) || str(o["text"]) == "" || utf8.RuneCountInString(str(o["text"])) > max {
				t.Errorf("%s: text object %v, want type in %v and 1 to %d characters", where, o, types, max)
			}
		}
		switch str(blk["type"]) {
		case "header":
			textObj(blk["text"], []string{"plain_text"}, 150)
		case "section":
			if blk["text"] == nil && blk["fields"] == nil {
				t.Errorf("%s: neither text nor fields", where)
			}
			if blk["text"] != nil {
				textObj(blk["text"], []string{"mrkdwn", "plain_text"}, 3000)
			}
			if f := list(blk["fields"]); len(f) > 10 {
				t.Errorf("%s: %d fields, want at most 10", where, len(f))
			}
			for _, f := range list(blk["fields"]) {
				textObj(f, []string{"mrkdwn", "plain_text"}, 2000)
			}
		case "context":
			els := list(blk["elements"])
			if len(els) == 0 || len(els) > 10 {
				t.Errorf("%s: %d elements, want 1 to 10", where, len(els))
			}
			for _, e := range els {
				textObj(e, []string{"mrkdwn", "plain_text"}, 3000)
			}
		case "actions":
			els := list(blk["elements"])
			if len(els) == 0 || len(els) > 25 {
				t.Errorf("%s: %d elements, want 1 to 25", where, len(els))
			}
			for _, e := range els {
				b := obj(e)
				if str(b["type"]) != "button" || str(b["url"]) == "" || str(b["action_id"]) == "" {
					t.Errorf("%s: element %v, want a button with a url and an action_id", where, b)
				}
				textObj(b["text"], []string{"plain_text"}, 75)
			}
		case "divider":
		default:
			t.Errorf("%s: not a Block Kit layout block", where)
		}
	}
	return blocks
}

// blockTypes lists the blocks' types.
func blockTypes(blocks []map[string]any) []string {
	var out []string
	for _, b := range blocks {
		out = append(out, str(b["type"]))
	}
	return out
}

// buttons maps each button's text to its url.
func buttons(blocks []map[string]any) map[string]string {
	out := map[string]string{}
	for _, b := range blocks {
		for _, e := range list(b["elements"]) {
			if str(obj(e)["type"]) == "button" {
				out[str(obj(obj(e)["text"])["text"])] = str(obj(e)["url"])
			}
		}
	}
	return out
}

// adaptiveCard checks a Workflows message and returns its card.
func adaptiveCard(t *testing.T, msg map[string]any) map[string]any {
	t.Helper()
	if str(msg["type"]) != "message" {
		t.Errorf(`Teams message type = %q, want "message"`, msg["type"])
	}
	atts := list(msg["attachments"])
	if len(atts) != 1 {
		t.Fatalf("Teams message has %d attachments, want 1", len(atts))
	}
	att := obj(atts[0])
	if got := str(att["contentType"]); got != "application/vnd.microsoft.card.adaptive" {
		t.Errorf("attachment contentType = %q, want application/vnd.microsoft.card.adaptive", got)
	}
	card := obj(att["content"])
	if str(card["type"]) != "AdaptiveCard" || str(card["version"]) == "" || str(card["$schema"]) == "" {
		t.Errorf("card = type %q version %q $schema %q, want an AdaptiveCard with a version and a schema",
			card["type"], card["version"], card["$schema"])
	}
	body := list(card["body"])
	if len(body) == 0 {
		t.Fatal("card without a body")
	}
	for i, e := range body {
		el := obj(e)
		switch str(el["type"]) {
		case "TextBlock":
			if str(el["text"]) == "" {
				t.Errorf("body %d: TextBlock without text", i)
			}
		case "FactSet":
			for _, f := range list(el["facts"]) {
				if str(obj(f)["title"]) == "" || str(obj(f)["value"]) == "" {
					t.Errorf("body %d: fact %v, want a title and a value", i, f)
				}
			}
		default:
			t.Errorf("body %d: element type %q not used by these cards", i, el["type"])
		}
	}
	for i, a := range list(card["actions"]) {
		act := obj(a)
		if str(act["type"]) != "Action.OpenUrl" || str(act["title"]) == "" || str(act["url"]) == "" {
			t.Errorf("action %d = %v, want Action.OpenUrl with a title and a url", i, act)
		}
	}
	return card
}

// facts maps a card's facts' titles to their values.
func facts(card map[string]any) map[string]string {
	out := map[string]string{}
	for _, e := range list(card["body"]) {
		for _, f := range list(obj(e)["facts"]) {
			out[str(obj(f)["title"])] = str(obj(f)["value"])
		}
	}
	return out
}

// cardActions maps a card's actions' titles to their urls.
func cardActions(card map[string]any) map[string]string {
	out := map[string]string{}
	for _, a := range list(card["actions"]) {
		out[str(obj(a)["title"])] = str(obj(a)["url"])
	}
	return out
}

// slackFields maps a section's fields ("*Name*\nvalue") to their values.
func slackFields(blocks []map[string]any) map[string]string {
	out := map[string]string{}
	for _, b := range blocks {
		for _, f := range list(b["fields"]) {
			name, value, _ := strings.Cut(str(obj(f)["text"]), "\n")
			out[strings.Trim(name, "*")] = value
		}
	}
	return out
}

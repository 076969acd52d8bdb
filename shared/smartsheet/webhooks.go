package smartsheet

import (
	"context"
	"fmt"
)

// newWebhook is the writable part of a webhook.
type newWebhook struct {
	Name          string    `json:"name"`
	CallbackURL   string    `json:"callbackUrl"`
	Scope         string    `json:"scope"`
	ScopeObjectID int64     `json:"scopeObjectId"`
	Subscope      *Subscope `json:"subscope,omitempty"`
	Events        []string  `json:"events"`
	Version       int       `json:"version"`
}

// CreateWebhook creates a webhook (created disabled, NEW_NOT_VERIFIED). Scope
// defaults to "sheet", Events to ["*.*"] and Version to 1. The answer carries
// the shared secret used to check callback signatures.
func (c *Client) CreateWebhook(ctx context.Context, w Webhook) (*Webhook, error) {
	body := newWebhook{Name: w.Name, CallbackURL: w.CallbackURL, Scope: w.Scope, ScopeObjectID: w.ScopeObjectID,
		Subscope: w.Subscope, Events: w.Events, Version: w.Version}
	if body.Scope == "" {
		body.Scope = "sheet"
	}
	if len(body.Events) == 0 {
		body.Events = []string{"*.*"}
	}
	if body.Version == 0 {
		body.Version = 1
	}
	var r Result[Webhook]
	if err := c.doJSON(ctx, "POST /webhooks", "POST", "/webhooks", nil, body, &r, 0); err != nil {
		return nil, fmt.Errorf("create webhook %q: %w", w.Name, err)
	}
	return &r.Result, nil
}

// GetWebhook reads a webhook.
func (c *Client) GetWebhook(ctx context.Context, webhookID int64) (*Webhook, error) {
	var w Webhook
	if err := c.doJSON(ctx, "GET /webhooks/{webhookId}", "GET", "/webhooks/"+id(webhookID), nil, nil, &w, 0); err != nil {
		return nil, fmt.Errorf("get webhook %d: %w", webhookID, err)
	}
	return &w, nil
}

// ListWebhooks lists the token's webhooks, all pages.
func (c *Client) ListWebhooks(ctx context.Context) ([]Webhook, error) {
	out, err := listAll[Webhook](ctx, c, "GET /webhooks", "/webhooks", nil, 0, limitGeneral)
	if err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	return out, nil
}

// WebhookUpdate is the body of an update; zero fields are not sent.
type WebhookUpdate struct {
	Enabled     *bool     `json:"enabled,omitempty"`
	Name        string    `json:"name,omitempty"`
	CallbackURL string    `json:"callbackUrl,omitempty"`
	Events      []string  `json:"events,omitempty"`
	Version     int       `json:"version,omitempty"`
	Subscope    *Subscope `json:"subscope,omitempty"`
}

// UpdateWebhook changes a webhook; enabling it triggers verification.
func (c *Client) UpdateWebhook(ctx context.Context, webhookID int64, u WebhookUpdate) (*Webhook, error) {
	var r Result[Webhook]
	if err := c.doJSON(ctx, "PUT /webhooks/{webhookId}", "PUT", "/webhooks/"+id(webhookID), nil, u, &r, 0); err != nil {
		return nil, fmt.Errorf("update webhook %d: %w", webhookID, err)
	}
	return &r.Result, nil
}

// SetWebhookEnabled enables or disables a webhook.
func (c *Client) SetWebhookEnabled(ctx context.Context, webhookID int64, enabled bool) (*Webhook, error) {
	return c.UpdateWebhook(ctx, webhookID, WebhookUpdate{Enabled: &enabled})
}

// DeleteWebhook deletes a webhook.
func (c *Client) DeleteWebhook(ctx context.Context, webhookID int64) error {
	var r Result[any]
	if err := c.doJSON(ctx, "DELETE /webhooks/{webhookId}", "DELETE", "/webhooks/"+id(webhookID), nil, nil, &r, 0); err != nil {
		return fmt.Errorf("delete webhook %d: %w", webhookID, err)
	}
	return nil
}

// ResetSharedSecret rotates a webhook's shared secret and returns the new one.
func (c *Client) ResetSharedSecret(ctx context.Context, webhookID int64) (string, error) {
	var r Result[struct {
		SharedSecret string `json:"sharedSecret"`
	}]
	path := "/webhooks/" + id(webhookID) + "/resetSharedSecret"
	if err := c.doJSON(ctx, "POST /webhooks/{webhookId}/resetSharedSecret", "POST", path, nil, nil, &r, 0); err != nil {
		return "", fmt.Errorf("reset shared secret of webhook %d: %w", webhookID, err)
	}
	return r.Result.SharedSecret, nil
}

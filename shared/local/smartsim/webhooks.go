package smartsim

import (
	"fmt"
	"io"
	"net/url"
	"slices"

	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// webhookRec is a stored webhook. Delivery of callbacks (webhook_delivery.go)
// follows the committed changes (OnChange) and signs bodies with SharedSecret.
type webhookRec struct {
	smartsheet.Webhook
	Owner string `json:"owner"`
}

func (s *Server) newSecret() string {
	a, b := s.st.nextID(), s.st.nextID()
	return fmt.Sprintf("%013x%013x", a, b)
}

func (w *webhookRec) wire() smartsheet.Webhook {
	out := w.Webhook
	en := *w.Enabled
	out.Enabled = &en
	out.Events = slices.Clone(w.Events)
	return out
}

func createWebhook(s *Server, q *request) (any, *apiError) {
	var in smartsheet.Webhook
	if aerr := decodeBody(q.r, &in); aerr != nil {
		return nil, aerr
	}
	switch {
	case in.Name == "":
		return nil, errMissing("webhook.name")
	case in.CallbackURL == "":
		return nil, errMissing("webhook.callbackUrl")
	case in.Scope == "":
		return nil, errMissing("webhook.scope")
	case in.ScopeObjectID == 0:
		return nil, errMissing("webhook.scopeObjectId")
	case len(in.Events) == 0:
		return nil, errMissing("webhook.events")
	case in.Version == 0:
		return nil, errMissing("webhook.version")
	}
	if u, err := url.Parse(in.CallbackURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, errBadParam(in.CallbackURL, "callbackUrl")
	}
	if in.Scope != "sheet" {
		return nil, errBadParam(in.Scope, "scope")
	}
	if !slices.Equal(in.Events, []string{"*.*"}) {
		return nil, errBadParam(fmt.Sprint(in.Events), "events")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.Sheets[in.ScopeObjectID] == nil {
		return nil, errNotFound()
	}
	now := s.clk.now()
	f := false
	w := &webhookRec{Webhook: smartsheet.Webhook{
		ID: s.st.nextID(), Name: in.Name, CallbackURL: in.CallbackURL, Scope: in.Scope,
		ScopeObjectID: in.ScopeObjectID, Subscope: in.Subscope, Events: in.Events, Version: in.Version,
		Enabled: &f, Status: smartsheet.WebhookNewNotVerified, SharedSecret: s.newSecret(),
		APIClientID: "smartsim", CreatedAt: &now, ModifiedAt: &now,
	}, Owner: q.user.Email}
	s.st.Webhooks[w.ID] = w
	return success(w.wire(), 0), nil
}

func listWebhooks(s *Server, q *request) (any, *apiError) {
	p, aerr := parsePaging(q.r.URL.Query())
	if aerr != nil {
		return nil, aerr
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var items []smartsheet.Webhook
	for _, w := range s.st.Webhooks {
		items = append(items, w.wire())
	}
	slices.SortFunc(items, func(a, b smartsheet.Webhook) int { return a.CreatedAt.Compare(*b.CreatedAt)*2 + cmpID(a.ID, b.ID) })
	return indexResult(p, items), nil
}

func cmpID(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (s *Server) webhookFor(q *request) (*webhookRec, *apiError) {
	id, aerr := q.pathID("webhookId")
	if aerr != nil {
		return nil, aerr
	}
	w := s.st.Webhooks[id]
	if w == nil {
		return nil, errNotFound()
	}
	return w, nil
}

func getWebhook(s *Server, q *request) (any, *apiError) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	w, aerr := s.webhookFor(q)
	if aerr != nil {
		return nil, aerr
	}
	return w.wire(), nil
}

// updateWebhook changes name, callbackUrl, events, version, subscope and enabled.
// Enabling a webhook that is not ENABLED runs the verification handshake
// against its callback before answering (outside the state lock, bounded by
// the delivery timeout): ENABLED if the callback echoes the challenge, else
// DISABLED_VERIFICATION_FAILED. Disabling drops its pending events.
func updateWebhook(s *Server, q *request) (any, *apiError) {
	raw, err := io.ReadAll(io.LimitReader(q.r.Body, 1<<20))
	if err != nil {
		return nil, errBadJSON(err)
	}
	var in smartsheet.Webhook
	keys, aerr := decodeWithKeys(raw, &in)
	if aerr != nil {
		return nil, aerr
	}
	s.mu.Lock()
	w, aerr := s.webhookFor(q)
	if aerr != nil {
		s.mu.Unlock()
		return nil, aerr
	}
	has := func(k string) bool { _, ok := keys[k]; return ok }
	if has("name") && in.Name != "" {
		w.Name = in.Name
	}
	if has("callbackUrl") && in.CallbackURL != "" {
		if u, err := url.Parse(in.CallbackURL); err != nil || u.Host == "" {
			s.mu.Unlock()
			return nil, errBadParam(in.CallbackURL, "callbackUrl")
		}
		w.CallbackURL = in.CallbackURL
	}
	if has("events") && len(in.Events) > 0 {
		w.Events = in.Events
	}
	if has("version") && in.Version != 0 {
		w.Version = in.Version
	}
	if has("subscope") {
		w.Subscope = in.Subscope
	}
	now := s.clk.now()
	w.ModifiedAt = &now
	id := w.ID
	s.mu.Unlock()
	if has("enabled") && in.Enabled != nil {
		out, err := s.setWebhookEnabled(id, *in.Enabled)
		if err != nil {
			return nil, toAPIError(err)
		}
		return success(out, 0), nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if w := s.st.Webhooks[id]; w != nil {
		return success(w.wire(), 0), nil
	}
	return nil, errNotFound()
}

// setWebhookEnabled enables a webhook after a successful verification, or
// disables it (DISABLED_BY_OWNER). Enabling an ENABLED webhook changes
// nothing.
func (s *Server) setWebhookEnabled(id int64, enabled bool) (smartsheet.Webhook, error) {
	s.mu.Lock()
	w := s.st.Webhooks[id]
	if w == nil {
		s.mu.Unlock()
		return smartsheet.Webhook{}, fmt.Errorf("webhook %d: %w", id, errNotFound())
	}
	if !enabled || w.Status == smartsheet.WebhookEnabled {
		if !enabled {
			f, now := false, s.clk.now()
			w.Enabled, w.Status, w.DisabledDetails, w.ModifiedAt = &f, smartsheet.WebhookDisabledByOwner, "", &now
		}
		out := w.wire()
		s.mu.Unlock()
		if !enabled {
			s.wh.drop(id)
		}
		return out, nil
	}
	callback := w.CallbackURL
	s.mu.Unlock()
	ok := s.wh.verify(id, callback)
	s.mu.Lock()
	defer s.mu.Unlock()
	w = s.st.Webhooks[id]
	if w == nil {
		return smartsheet.Webhook{}, fmt.Errorf("webhook %d: %w", id, errNotFound())
	}
	now := s.clk.now()
	en := ok
	w.Enabled, w.ModifiedAt = &en, &now
	if ok {
		w.Status, w.DisabledDetails = smartsheet.WebhookEnabled, ""
		s.wh.resetVerify(id)
	} else {
		w.Status, w.DisabledDetails = smartsheet.WebhookDisabledVerificationFailed, "verification failed"
	}
	return w.wire(), nil
}

func deleteWebhook(s *Server, q *request) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, aerr := s.webhookFor(q)
	if aerr != nil {
		return nil, aerr
	}
	delete(s.st.Webhooks, w.ID)
	s.wh.drop(w.ID)
	return smartsheet.Result[any]{Message: "SUCCESS"}, nil
}

func resetSharedSecret(s *Server, q *request) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, aerr := s.webhookFor(q)
	if aerr != nil {
		return nil, aerr
	}
	w.SharedSecret = s.newSecret()
	return success(map[string]any{"sharedSecret": w.SharedSecret, "webhookId": w.ID}, 0), nil
}

// Webhooks returns the stored webhooks (for delivery and tests).
func (s *Server) Webhooks() []smartsheet.Webhook {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []smartsheet.Webhook
	for _, w := range s.st.Webhooks {
		out = append(out, w.wire())
	}
	slices.SortFunc(out, func(a, b smartsheet.Webhook) int { return cmpID(a.ID, b.ID) })
	return out
}

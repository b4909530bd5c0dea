package gate

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/govlog/govlog/internal/opa"
)

// maxOPAResponse bounds an answer of OPA.
const maxOPAResponse = 1 << 20

// opaClient queries OPA's data API.
type opaClient struct {
	http    *http.Client
	url     string // the decision's data API URL, with provenance
	path    string
	headers []string
	timeout time.Duration
}

func newOPAClient(c *OPAConfig) *opaClient {
	headers := make([]string, len(c.Headers))
	for i, h := range c.Headers {
		headers[i] = strings.ToLower(h)
	}
	return &opaClient{
		http:    &http.Client{Transport: transport(0)},
		url:     strings.TrimSuffix(c.URL, "/") + "/v1/data/" + c.Path + "?provenance=true",
		path:    c.Path,
		headers: headers,
		timeout: c.Timeout.or(DefaultOPATimeout),
	}
}

// Input is the input the gate gives the policy. The subject, action and
// resource members are where govlogd's OPA decision-log endpoint looks by
// default, so a decision logged by OPA's own plugin maps the same way.
type Input struct {
	Method   string            `json:"method"`
	Path     string            `json:"path"`
	Params   map[string]string `json:"params"`
	Subject  string            `json:"subject"`
	Action   string            `json:"action"`
	Resource string            `json:"resource,omitempty"`
	Headers  map[string]string `json:"headers"`
}

// query asks OPA for the decision on input.
func (o *opaClient) query(ctx context.Context, input []byte) (*opa.DataResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	body := append(append([]byte(`{"input":`), input...), '}')
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("failed to build the OPA query: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := o.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("failed to query OPA: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxOPAResponse+1))
	if err != nil {
		return nil, fmt.Errorf("failed to read OPA's answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("OPA answered %d: %.200s", resp.StatusCode, data)
	}
	if len(data) > maxOPAResponse {
		return nil, fmt.Errorf("OPA's answer exceeds %d bytes", maxOPAResponse)
	}
	var dr opa.DataResponse
	if err := json.Unmarshal(data, &dr); err != nil {
		return nil, fmt.Errorf("failed to parse OPA's answer: %w", err)
	}
	return &dr, nil
}

// decide is step 2 of policy mode: it asks OPA, logs the decision, and
// returns the artifact of an allow; a deny is a refusal naming the logged
// decision.
func (g *Gate) decide(ctx context.Context, req *request) (string, error) {
	r := req.r
	in := Input{Method: r.Method, Path: r.URL.Path, Params: map[string]string{}, Subject: req.identity,
		Action: req.action, Resource: req.resource, Headers: map[string]string{}}
	if r.Pattern != "" {
		for _, name := range routeWildcards(r.Pattern) {
			in.Params[name] = r.PathValue(name)
		}
	}
	for _, h := range g.opa.headers {
		if v := r.Header.Values(h); len(v) > 0 {
			in.Headers[h] = strings.Join(v, ", ")
		}
	}
	input, err := json.Marshal(in)
	if err != nil {
		return "", err
	}
	ans, err := g.opa.query(ctx, input)
	if err != nil {
		return "", &refusal{http.StatusServiceUnavailable, codePolicyUnavailable, err.Error(), nil}
	}
	d := opa.Decision{ID: newID(), DecidedAt: now(), Subject: req.identity, Action: req.action, Resource: req.resource,
		Policy: opa.Policy{ID: g.opa.path}}
	if d.Outcome, err = opa.Outcome(ans.Result); err != nil {
		return "", &refusal{http.StatusServiceUnavailable, codePolicyUnavailable, "policy " + g.opa.path + ": " + err.Error(), nil}
	}
	if ans.Provenance != nil {
		if d.Policy.Version, err = opa.PolicyVersion(ans.Provenance.Bundles, ans.Provenance.Revision); err != nil {
			return "", &refusal{http.StatusServiceUnavailable, codePolicyUnavailable, err.Error(), nil}
		}
	}
	if d.InputDigest, err = opa.InputDigest(input); err != nil {
		return "", err
	}
	var extra map[string]any
	if ans.DecisionID != "" {
		extra = map[string]any{"opa": map[string]string{"decision_id": ans.DecisionID}}
	}
	d.Context = requestContext(r, extra)
	body, err := json.Marshal(d)
	if err != nil {
		return "", err
	}
	rec, _, err := g.log.Submit(ctx, body)
	if err != nil {
		return "", logRefusal("the log did not accept the decision", err)
	}
	if d.Outcome == "deny" {
		return "", &refusal{http.StatusForbidden, codePolicyDenied, "policy " + g.opa.path + " denies " + req.action,
			map[string]any{"decision_id": d.ID, "index": rec.Index}}
	}
	if rec.Artifact == "" {
		return "", &refusal{http.StatusServiceUnavailable, codeLogUnavailable, "the log gave no artifact for the allow " + d.ID, nil}
	}
	return rec.Artifact, nil
}

// routeWildcards are the wildcard names of a ServeMux pattern.
func routeWildcards(pattern string) []string {
	var names []string
	for _, m := range wildcard.FindAllStringSubmatch(pattern, -1) {
		if n := strings.TrimSuffix(m[1], "..."); n != "$" {
			names = append(names, n)
		}
	}
	return names
}

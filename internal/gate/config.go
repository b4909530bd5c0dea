package gate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/govlog/govlog/internal/keys"
)

// Modes of the gate.
const (
	// ModeArtifact: the caller presents the authorization artifact.
	ModeArtifact = "artifact"
	// ModePolicy: the gate asks OPA, logs the decision and uses its
	// artifact.
	ModePolicy = "policy"
)

// Defaults of the configuration file.
const (
	DefaultListen           = "127.0.0.1:8480"
	DefaultAdminListen      = "127.0.0.1:8481"
	DefaultArtifactHeader   = "Authorization"
	DefaultRuntime          = "govlog-gate"
	DefaultMaxRequestBytes  = 10 << 20
	DefaultMaxResponseBytes = 100 << 20
	DefaultLogTimeout       = 10 * time.Second
	DefaultOPATimeout       = 5 * time.Second
	DefaultUpstreamTimeout  = 60 * time.Second
	// ArtifactScheme is the Authorization scheme of an artifact.
	ArtifactScheme = "GovLog"
)

// Config is the gate's configuration file (JSON, unknown members refused).
// Relative file names are relative to the file's directory. The zero value
// of each optional member selects the default named in its comment.
type Config struct {
	// Listen is the address the gate serves callers on. Default
	// DefaultListen.
	Listen string `json:"listen"`
	// AdminListen serves /metrics, /healthz and /readyz, never the
	// proxied API. Default DefaultAdminListen; "off" disables it.
	AdminListen string `json:"admin_listen"`
	// Upstream is the base URL of the tool or API behind the gate.
	// Required.
	Upstream string `json:"upstream"`
	// Mode is ModeArtifact or ModePolicy. Default ModeArtifact.
	Mode string `json:"mode"`
	// TLS serves callers over HTTPS, optionally with client certificates
	// (the caller's identity). Default: plain HTTP.
	TLS *TLSConfig `json:"tls"`
	// Log is the govlog server. Required.
	Log LogConfig `json:"log"`
	// Artifact says where callers put the artifact (artifact mode).
	Artifact ArtifactConfig `json:"artifact"`
	// Identity says who the caller is. Required in policy mode; in artifact
	// mode, when set, the artifact's subject must be the caller.
	Identity IdentityConfig `json:"identity"`
	// OPA is the policy decision point. Required in policy mode.
	OPA *OPAConfig `json:"opa"`
	// Routes map requests to actions and resources. A request no route
	// matches is refused. At least one is required.
	Routes []Route `json:"routes"`
	// Limits bound bodies and waits.
	Limits Limits `json:"limits"`
	// Runtime is the "runtime" of the gate's execution reports. Default
	// DefaultRuntime.
	Runtime string `json:"runtime"`
}

// TLSConfig is the gate's server certificate and, optionally, the CA of
// client certificates (then every caller must present one).
type TLSConfig struct {
	CertFile     string `json:"cert_file"`
	KeyFile      string `json:"key_file"`
	ClientCAFile string `json:"client_ca_file"`
}

// LogConfig is how the gate talks to govlog.
type LogConfig struct {
	// URL is the govlog server's base URL. Required.
	URL string `json:"url"`
	// LogKeyFile holds the log's note verifier key (log.vkey). Required:
	// artifacts and receipts are verified with it.
	LogKeyFile string `json:"log_key_file"`
	// TokenFile holds the bearer token of the gate's submissions (the
	// executions permission; decisions too in policy mode). Default: none.
	TokenFile string `json:"token_file"`
	// Audience is the "aud" artifacts must name: the gate's identity when
	// decisions name it as executor, or govlogd's --artifact-audience.
	// Default: none (an artifact with an aud is refused).
	Audience string `json:"audience"`
	// Timeout bounds each request to the log, retries included. Default
	// DefaultLogTimeout.
	Timeout Duration `json:"timeout"`
}

// ArtifactConfig says where callers put the artifact.
type ArtifactConfig struct {
	// Header carries the artifact: "Authorization" with the scheme
	// "GovLog" ("Authorization: GovLog <jwt>"), or any other header with
	// the bare JWT. Default DefaultArtifactHeader.
	Header string `json:"header"`
	// Forward keeps the header on the forwarded request. Default false:
	// the tool never sees the artifact.
	Forward bool `json:"forward"`
}

// IdentityConfig says where the caller's identity comes from: a header set
// by a trusted proxy in front of the gate, or the client certificate
// (tls.client_ca_file): its first URI SAN (a SPIFFE ID), else its subject
// common name.
type IdentityConfig struct {
	Header string `json:"header"`
	MTLS   bool   `json:"mtls"`
}

// OPAConfig is the policy decision point of policy mode.
type OPAConfig struct {
	// URL is OPA's base URL, e.g. "http://127.0.0.1:8181". Required.
	URL string `json:"url"`
	// Path is the decision's path under /v1/data, e.g.
	// "govlog/gate/allow": the decision's policy.id. Required.
	Path string `json:"path"`
	// Headers are the request headers given to the policy in
	// input.headers (lowercase names). Default: none.
	Headers []string `json:"headers"`
	// Timeout bounds a query. Default DefaultOPATimeout.
	Timeout Duration `json:"timeout"`
}

// Route maps the requests that match Method and Path to an action and a
// resource. Path is a net/http ServeMux path pattern: "{name}" matches
// one segment, "{name...}" the rest of the path. Action and Resource may
// name the wildcards: "tool/{name}".
type Route struct {
	// Method is the HTTP method; "" matches any.
	Method   string `json:"method"`
	Path     string `json:"path"`
	Action   string `json:"action"`
	Resource string `json:"resource"`
}

// Limits bound what the gate relays and how long it waits.
type Limits struct {
	// MaxRequestBytes bounds a request body. Default
	// DefaultMaxRequestBytes.
	MaxRequestBytes int64 `json:"max_request_bytes"`
	// MaxResponseBytes bounds a response body; a longer one is cut and
	// reported failed. Default DefaultMaxResponseBytes.
	MaxResponseBytes int64 `json:"max_response_bytes"`
	// UpstreamTimeout bounds the wait for the tool's response headers.
	// Default DefaultUpstreamTimeout.
	UpstreamTimeout Duration `json:"upstream_timeout"`
	// MaxConns bounds the callers' connections served at once, and
	// MaxConnsPerAddr those of one client address (an IPv6 /64 counts as
	// one); while more than half of MaxConns are open, idle connections
	// are closed after 5s (the rules of govlogd's --max-conns). Defaults
	// DefaultMaxConns and a quarter of MaxConns. Behind a proxy every
	// caller has the proxy's address: raise MaxConnsPerAddr to MaxConns.
	MaxConns        int `json:"max_conns"`
	MaxConnsPerAddr int `json:"max_conns_per_addr"`
}

// DefaultMaxConns is Limits.MaxConns when unset.
const DefaultMaxConns = 4096

// Duration is a time.Duration written as a Go duration string ("5s").
type Duration time.Duration

// UnmarshalJSON reads "1.5s", "300ms", ….
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New(`a duration must be a string such as "5s"`)
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("invalid duration %q", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the duration as UnmarshalJSON reads it.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// or returns d, or def when d is zero.
func (d Duration) or(def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return time.Duration(d)
}

// LoadConfig reads a configuration file: strict JSON, relative file names
// made relative to its directory, defaults filled in, validated.
func LoadConfig(path string) (*Config, error) {
	data, err := keys.ReadConfig(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read the configuration: %w", err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("failed to load %s: %w", path, err)
	}
	cfg.resolve(filepath.Dir(path))
	return cfg, nil
}

// ParseConfig parses a configuration file's contents, without
// validating it (Validate does).
func ParseConfig(data []byte) (*Config, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var cfg Config
	if err := dec.Decode(&cfg); err != nil {
		return nil, fmt.Errorf("failed to parse the configuration: %w", err)
	}
	if dec.More() {
		return nil, errors.New("failed to parse the configuration: data after the object")
	}
	return &cfg, nil
}

// resolve makes the file names relative to dir.
func (c *Config) resolve(dir string) {
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	abs(&c.Log.LogKeyFile)
	abs(&c.Log.TokenFile)
	if c.TLS != nil {
		abs(&c.TLS.CertFile)
		abs(&c.TLS.KeyFile)
		abs(&c.TLS.ClientCAFile)
	}
}

// wildcard matches a ServeMux wildcard or a template placeholder.
var wildcard = regexp.MustCompile(`\{([^{}]*)\}`)

// Validate fills in the defaults and checks the configuration.
func (c *Config) Validate() error {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.AdminListen == "" {
		c.AdminListen = DefaultAdminListen
	}
	if c.Mode == "" {
		c.Mode = ModeArtifact
	}
	if c.Artifact.Header == "" {
		c.Artifact.Header = DefaultArtifactHeader
	}
	if c.Runtime == "" {
		c.Runtime = DefaultRuntime
	}
	if c.Limits.MaxRequestBytes == 0 {
		c.Limits.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if c.Limits.MaxResponseBytes == 0 {
		c.Limits.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if c.Limits.MaxRequestBytes < 0 || c.Limits.MaxResponseBytes < 0 || c.Limits.MaxConns < 0 || c.Limits.MaxConnsPerAddr < 0 {
		return errors.New("limits must not be negative")
	}
	if err := checkURL("upstream", c.Upstream); err != nil {
		return err
	}
	if err := checkURL("log.url", c.Log.URL); err != nil {
		return err
	}
	if c.Log.LogKeyFile == "" {
		return errors.New("log.log_key_file is required: artifacts and receipts are verified with the log's key")
	}
	switch c.Mode {
	case ModeArtifact:
	case ModePolicy:
		if c.OPA == nil {
			return errors.New(`mode "policy" needs "opa"`)
		}
		if err := checkURL("opa.url", c.OPA.URL); err != nil {
			return err
		}
		c.OPA.Path = strings.Trim(c.OPA.Path, "/")
		if c.OPA.Path == "" {
			return errors.New("opa.path is required, e.g. govlog/gate/allow")
		}
		if c.Identity.Header == "" && !c.Identity.MTLS {
			return errors.New(`mode "policy" needs the caller's identity: "identity": {"header": …} or {"mtls": true}`)
		}
	default:
		return fmt.Errorf(`mode must be "artifact" or "policy", not %q`, c.Mode)
	}
	if c.Identity.Header != "" && c.Identity.MTLS {
		return errors.New(`identity: give "header" or "mtls", not both`)
	}
	if c.Identity.MTLS && (c.TLS == nil || c.TLS.ClientCAFile == "") {
		return errors.New(`identity.mtls needs tls.client_ca_file`)
	}
	if c.TLS != nil && (c.TLS.CertFile == "" || c.TLS.KeyFile == "") {
		return errors.New("tls needs cert_file and key_file")
	}
	if len(c.Routes) == 0 {
		return errors.New("at least one route is required: a request no route matches is refused")
	}
	for i, r := range c.Routes {
		if err := r.validate(); err != nil {
			return fmt.Errorf("routes[%d]: %w", i, err)
		}
	}
	return nil
}

func checkURL(name, s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s must be an http:// or https:// URL, not %q", name, s)
	}
	return nil
}

// pattern is the route's ServeMux pattern.
func (r Route) pattern() string {
	if r.Method == "" {
		return r.Path
	}
	return r.Method + " " + r.Path
}

func (r Route) validate() error {
	if !strings.HasPrefix(r.Path, "/") {
		return fmt.Errorf("path %q must start with /", r.Path)
	}
	if r.Method != "" && strings.ContainsAny(r.Method, " \t/{}") {
		return fmt.Errorf("invalid method %q", r.Method)
	}
	if r.Action == "" {
		return errors.New("action is required")
	}
	names := map[string]bool{}
	for _, n := range routeWildcards(r.Path) {
		names[n] = true
	}
	for _, t := range []string{r.Action, r.Resource} {
		for _, m := range wildcard.FindAllStringSubmatch(t, -1) {
			if !names[m[1]] {
				return fmt.Errorf("%q names {%s}, which is not a wildcard of path %q", t, m[1], r.Path)
			}
		}
	}
	return nil
}

// expand fills a template's placeholders with the values of value.
func expand(template string, value func(name string) string) string {
	if !strings.Contains(template, "{") {
		return template
	}
	return wildcard.ReplaceAllStringFunc(template, func(m string) string {
		return value(m[1 : len(m)-1])
	})
}

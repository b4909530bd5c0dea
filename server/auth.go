package server

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/govlog/govlog/internal/explorer"
	"github.com/govlog/govlog/log"
)

// Authentication.
//
// When Config.Auth is set, every write (POST) request must carry
//
//	Authorization: Bearer <token>
//
// The Authenticator turns the token into an Identity: a name, which becomes
// the entry's "submitter", and the permissions of that name. A request
// without valid credentials is answered 401 unauthenticated with a
// WWW-Authenticate: Bearer challenge (RFC 6750); valid credentials without
// the permission the route needs get 403 forbidden. Either way nothing is
// logged: authentication happens before the body is read.
//
// Reads stay public unless Config.AuthRead is set; then every GET and HEAD
// needs the read permission, except /healthz, /readyz, /metrics and the
// JWKS of the artifact keys (runtimes must be able to verify artifacts
// without a log credential). Server.submitter is the one place where the
// identity of a request is decided.

// Permission is a set of things an identity may do.
type Permission uint8

// Permissions.
const (
	// PermDecisions allows POST /v1/decisions and /v1/decisions/batch.
	PermDecisions Permission = 1 << iota
	// PermExecutions allows POST /v1/executions.
	PermExecutions
	// PermRead allows the read endpoints when Config.AuthRead is set.
	PermRead

	// PermNone allows nothing.
	PermNone Permission = 0
	// PermAll allows everything ("*").
	PermAll = PermDecisions | PermExecutions | PermRead
	// DefaultPermissions are the permissions of an identity whose
	// permissions are not written down: it may submit decisions and
	// execution reports, not read when reads need a permission.
	DefaultPermissions = PermDecisions | PermExecutions
)

// permissionNames are the words of a permission list, in String order.
var permissionNames = [...]struct {
	name string
	perm Permission
}{
	{"decisions", PermDecisions},
	{"executions", PermExecutions},
	{"read", PermRead},
}

// ParsePermissions parses a comma-separated list of permissions:
// "decisions", "executions", "read", "*" (all of them) or "none". Words may
// not repeat and the list may not be empty.
func ParsePermissions(s string) (Permission, error) {
	if s == "" {
		return 0, errors.New("empty permission list")
	}
	var p Permission
	seen := map[string]bool{}
	for word := range strings.SplitSeq(s, ",") {
		if seen[word] {
			return 0, fmt.Errorf("permission %q given twice", word)
		}
		seen[word] = true
		switch word {
		case "*":
			p |= PermAll
			continue
		case "none":
			continue
		}
		found := false
		for _, n := range permissionNames {
			if n.name == word {
				p |= n.perm
				found = true
			}
		}
		if !found {
			return 0, fmt.Errorf("unknown permission %q (want decisions, executions, read, * or none)", word)
		}
	}
	if seen["none"] && len(seen) > 1 {
		return 0, errors.New(`"none" cannot be combined with other permissions`)
	}
	return p, nil
}

// String returns p in the syntax of ParsePermissions.
func (p Permission) String() string {
	switch p {
	case PermNone:
		return "none"
	case PermAll:
		return "*"
	}
	var words []string
	for _, n := range permissionNames {
		if p&n.perm != 0 {
			words = append(words, n.name)
		}
	}
	return strings.Join(words, ",")
}

// Identity is an authenticated client.
type Identity struct {
	// Name is the entry's "submitter".
	Name string
	// Permissions are what Name may do.
	Permissions Permission
}

// Authenticator decides who sent a request.
//
// Authenticate MUST return an error wrapping ErrUnauthenticated when the
// request carries no credentials or credentials that are not valid, and
// such an error's message MUST NOT contain the credentials or any key
// material: it is sent to the client. The Identity it returns MUST have a
// Name that ValidIdentity accepts. It MUST be safe for concurrent use.
//
// An Authenticator that can be unable to accept any credential (a JWKS
// without a usable key) also implements Readier: /readyz then answers 503
// with its error. One that has metrics implements prometheus.Collector:
// New registers it with Config.Registry.
type Authenticator interface {
	Authenticate(r *http.Request) (Identity, error)
}

// Readier is implemented by an Authenticator that can be unable to accept
// any credential: Ready fails then, saying why in a message fit for
// anyone who may read /readyz.
type Readier interface {
	Ready() error
}

// ErrUnauthenticated is the error of a request without valid credentials.
var ErrUnauthenticated = errors.New("unauthenticated")

// authError is an ErrUnauthenticated with the reason told to the client.
type authError struct {
	reason string
	// missing is set when the request carried no credentials at all.
	missing bool
}

func (e *authError) Error() string { return e.reason }
func (e *authError) Is(target error) bool {
	return target == ErrUnauthenticated
}

func unauthenticatedf(format string, args ...any) error {
	return &authError{reason: fmt.Sprintf(format, args...)}
}

// Error codes and limits of authentication.
const (
	codeUnauthenticated = "unauthenticated"
	codeForbidden       = "forbidden"

	// MaxIdentity is the most chars (code points) in an identity.
	MaxIdentity = 256
	// maxBearer bounds the length of a bearer token.
	maxBearer = 8 << 10
	// realm is the realm of the Bearer challenge.
	realm = "govlog"
)

// ValidIdentity reports whether name can be an authenticated entry
// submitter: 1–256 chars of valid UTF-8 without control characters, and
// neither Anonymous (the submitter of unauthenticated entries) nor "*".
func ValidIdentity(name string) error {
	switch {
	case name == "":
		return errors.New("the identity is empty")
	case !utf8.ValidString(name):
		return errors.New("the identity is not valid UTF-8")
	case utf8.RuneCountInString(name) > MaxIdentity:
		return fmt.Errorf("the identity is longer than %d chars", MaxIdentity)
	case strings.ContainsFunc(name, unicode.IsControl):
		return errors.New("the identity contains control characters")
	case name == Anonymous:
		return fmt.Errorf("the identity %q is reserved for unauthenticated entries", Anonymous)
	case name == "*":
		return errors.New(`the identity "*" is reserved`)
	}
	return nil
}

// BearerToken returns the token of the request's Authorization header,
// "Bearer <token>" (RFC 6750 §2.1: the scheme is case-insensitive, the
// token is a b64token). It fails with ErrUnauthenticated when the header is
// missing, given more than once, of another scheme or malformed.
func BearerToken(r *http.Request) (string, error) {
	values := r.Header.Values("Authorization")
	switch len(values) {
	case 0:
		return "", &authError{reason: "a bearer token is required: send Authorization: Bearer <token>", missing: true}
	case 1:
	default:
		return "", unauthenticatedf("the Authorization header is given more than once")
	}
	scheme, token, ok := strings.Cut(values[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", unauthenticatedf("the Authorization header must be Bearer <token>")
	}
	token = strings.TrimLeft(token, " ")
	if token == "" {
		return "", unauthenticatedf("the bearer token is empty")
	}
	if len(token) > maxBearer {
		return "", unauthenticatedf("the bearer token is longer than %d bytes", maxBearer)
	}
	if !isB64Token(token) {
		return "", unauthenticatedf("the bearer token is malformed")
	}
	return token, nil
}

// isB64Token reports whether s is an RFC 6750 b64token:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isB64Token(s string) bool {
	body := strings.TrimRight(s, "=")
	if body == "" {
		return false
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '.', c == '_', c == '~', c == '+', c == '/':
		default:
			return false
		}
	}
	return true
}

// Tokens authenticates static bearer tokens. It holds only their SHA-256
// hashes, and compares a presented token's hash with every one of them in
// constant time. Create it with ParseTokens.
type Tokens struct {
	entries []tokenEntry
}

type tokenEntry struct {
	hash [sha256.Size]byte
	id   Identity
}

var _ Authenticator = (*Tokens)(nil)

// ParseTokens parses a static token file: one token a line,
//
//	identity sha256-hex-of-token [permissions]
//
// separated by spaces or tabs. identity must satisfy ValidIdentity (and
// cannot contain white space here); the hash is the SHA-256 of the token's
// bytes, in hex; permissions are in the syntax of ParsePermissions
// (default DefaultPermissions: "decisions,executions"). Blank lines and
// lines starting with '#' are ignored. An identity may have several tokens
// (to rotate them); the same hash may not appear twice. Errors name the
// line, never a hash.
//
//	# ci pipeline: token from `govlog keygen --token ci`
//	ci 8d969eef6ecad3c29a3a629280e686cf0c3f5d5a86aff3ca12020c923adc6c92
//	auditor 1d5b…e1f0 read
func ParseTokens(data []byte) (*Tokens, error) {
	t := &Tokens{}
	seen := map[[sha256.Size]byte]bool{}
	err := eachLine(data, func(n int, fields []string) error {
		if len(fields) < 2 || len(fields) > 3 {
			return fmt.Errorf("line %d: want \"identity sha256-hex [permissions]\"", n)
		}
		if err := ValidIdentity(fields[0]); err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
		var e tokenEntry
		raw, err := hex.DecodeString(fields[1])
		if err != nil || len(raw) != sha256.Size {
			return fmt.Errorf("line %d: the token hash must be 64 hex digits (the SHA-256 of the token)", n)
		}
		copy(e.hash[:], raw)
		if seen[e.hash] {
			return fmt.Errorf("line %d: the same token hash appears twice", n)
		}
		seen[e.hash] = true
		e.id = Identity{Name: fields[0], Permissions: DefaultPermissions}
		if len(fields) == 3 {
			if e.id.Permissions, err = ParsePermissions(fields[2]); err != nil {
				return fmt.Errorf("line %d: %w", n, err)
			}
		}
		t.entries = append(t.entries, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("failed to parse the token file: %w", err)
	}
	if len(t.entries) == 0 {
		return nil, errors.New("failed to parse the token file: it holds no token")
	}
	return t, nil
}

// TokenHash returns the hex SHA-256 of token: what a token file holds.
func TokenHash(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// Authenticate implements Authenticator.
func (t *Tokens) Authenticate(r *http.Request) (Identity, error) {
	token, err := BearerToken(r)
	if err != nil {
		return Identity{}, err
	}
	h := sha256.Sum256([]byte(token))
	// Look at every entry, whatever matches, so the time taken says
	// nothing about which one did.
	found := -1
	for i := range t.entries {
		if subtle.ConstantTimeCompare(h[:], t.entries[i].hash[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return Identity{}, unauthenticatedf("the bearer token is not valid")
	}
	return t.entries[found].id, nil
}

// PermissionTable gives each identity its permissions. The zero value (and
// nil) gives every identity DefaultPermissions.
type PermissionTable struct {
	byName map[string]Permission
	// def is the permissions of identities not listed.
	def    Permission
	hasDef bool
}

// ParsePermissionTable parses a permission file: one identity a line,
//
//	identity permissions
//
// with permissions in the syntax of ParsePermissions. The identity "*"
// sets the permissions of every identity not listed (default
// DefaultPermissions, "decisions,executions"; "* none" lets only the listed
// identities in). Blank lines and lines starting with '#' are ignored; an
// identity may be listed once.
//
//	# who may do what
//	ci-pipeline     decisions
//	runtime-eu-1    executions
//	auditor         read
//	*               none
func ParsePermissionTable(data []byte) (*PermissionTable, error) {
	pt := &PermissionTable{byName: map[string]Permission{}}
	err := eachLine(data, func(n int, fields []string) error {
		if len(fields) != 2 {
			return fmt.Errorf("line %d: want \"identity permissions\"", n)
		}
		p, err := ParsePermissions(fields[1])
		if err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
		if fields[0] == "*" {
			if pt.hasDef {
				return fmt.Errorf("line %d: \"*\" is listed twice", n)
			}
			pt.def, pt.hasDef = p, true
			return nil
		}
		if err := ValidIdentity(fields[0]); err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
		if _, dup := pt.byName[fields[0]]; dup {
			return fmt.Errorf("line %d: %q is listed twice", n, fields[0])
		}
		pt.byName[fields[0]] = p
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("failed to parse the permission file: %w", err)
	}
	return pt, nil
}

// Of returns the permissions of the identity name.
func (pt *PermissionTable) Of(name string) Permission {
	if pt == nil {
		return DefaultPermissions
	}
	if p, ok := pt.byName[name]; ok {
		return p
	}
	if pt.hasDef {
		return pt.def
	}
	return DefaultPermissions
}

// maxConfigLine bounds a line of a token or permission file.
const maxConfigLine = 4096

// eachLine calls f with the white-space separated fields of every line of
// data that is neither blank nor a comment, numbered from 1.
func eachLine(data []byte, f func(n int, fields []string) error) error {
	if !utf8.Valid(data) {
		return errors.New("the file is not valid UTF-8")
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 256), maxConfigLine)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if err := f(n, strings.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == '\t' })); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("failed to read the file: %w", err)
	}
	return nil
}

// publicRead reports whether a GET of path needs no credentials even when
// reads do: probes, metrics and the artifact keys.
func publicRead(path string) bool {
	switch path {
	case "/healthz", "/readyz", "/metrics", JWKSPath:
		return true
	}
	// The explorer's pages and assets hold no log data: the page asks for
	// the token and sends it with every API request it makes.
	return explorer.IsPage(path)
}

// requireRead is the middleware that makes reads need PermRead when
// Config.AuthRead is set. Writes are checked by submitter, which the
// submission handlers call before reading the body.
func (s *Server) requireRead(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if s.cfg.Auth == nil || !s.cfg.AuthRead {
			return next(c)
		}
		r := c.Request()
		if (r.Method == http.MethodGet || r.Method == http.MethodHead) && !publicRead(r.URL.Path) {
			if _, err := s.identify(c, PermRead); err != nil {
				return err
			}
		}
		return next(c)
	}
}

// submitter returns the identity of the client that sent the request, the
// entry's "submitter", after checking that it may do need: Anonymous when
// authentication is not configured.
func (s *Server) submitter(c echo.Context, need Permission) (string, error) {
	id, err := s.identify(c, need)
	if err != nil {
		return "", err
	}
	return id.Name, nil
}

// identify is the one place where the identity of a request is decided: it
// authenticates the request (401 unauthenticated) and checks that the
// identity holds need (403 forbidden).
func (s *Server) identify(c echo.Context, need Permission) (Identity, error) {
	if s.cfg.Auth == nil {
		return Identity{Name: Anonymous, Permissions: PermAll}, nil
	}
	h := c.Response().Header()
	id, err := s.cfg.Auth.Authenticate(c.Request())
	if err != nil {
		if !errors.Is(err, ErrUnauthenticated) {
			return Identity{}, fmt.Errorf("%w: failed to authenticate: %w", log.ErrUnavailable, err)
		}
		var ae *authError
		if errors.As(err, &ae) && ae.missing {
			h.Set("WWW-Authenticate", `Bearer realm="`+realm+`"`)
		} else {
			h.Set("WWW-Authenticate", `Bearer realm="`+realm+`", error="invalid_token"`)
		}
		return Identity{}, &apiError{http.StatusUnauthorized, codeUnauthenticated, clip(err.Error())}
	}
	if err := ValidIdentity(id.Name); err != nil {
		h.Set("WWW-Authenticate", `Bearer realm="`+realm+`", error="invalid_token"`)
		return Identity{}, &apiError{http.StatusUnauthorized, codeUnauthenticated, clip("the token's identity cannot be a submitter: " + err.Error())}
	}
	if id.Permissions&need != need {
		h.Set("WWW-Authenticate", `Bearer realm="`+realm+`", error="insufficient_scope"`)
		return Identity{}, &apiError{http.StatusForbidden, codeForbidden,
			clip(fmt.Sprintf("%q does not have the %s permission", id.Name, need))}
	}
	return id, nil
}

// Package explorer is the web page of govlogd for people: the log at a
// glance, recent decisions, search, one entry (the public proof page), one
// checkpoint and its consistency with an earlier one, and a drop zone for a
// .tlog-proof or an evidence bundle.
//
// The server only hands out static files: the HTML shell, a stylesheet and
// one script. The script reads the REST API of the same origin and checks
// every proof itself, in the browser, with the TypeScript verifier of
// clients/ts: the checkpoint's Ed25519 signature (and the witness policy's
// cosignatures), the entry's bytes from the tlog-tiles entry bundle, their
// leaf hash, and the inclusion proof of that hash in the checkpoint's tree.
// Nothing the page shows as verified rests on the server's word.
//
// The pages are
//
//	/                   the log at a glance and its recent entries
//	/search             search (GET /v1/search)
//	/entries/{index}    one entry, verified: the public proof page
//	/checkpoints        the latest checkpoint, its witnesses, and its consistency with an earlier one
//	/verify             a .tlog-proof or evidence bundle dropped in the page, verified there
//	/explorer/…         the assets
//
// Every page path answers the same HTML shell; the script routes on the
// path. The assets hold no log data, so they are served without
// authentication even when reads need a token: the script asks for the
// token and sends it with every API request (it is kept in the tab's
// sessionStorage only). The answers carry a Content-Security-Policy that
// allows the page's own script and stylesheet and connections to its own
// origin, and nothing else: no inline script, no frames, no other origin.
//
// The script (assets/app.js) is built from src/ with esbuild and committed,
// so that building govlogd needs no Node; `make explorer-check` rebuilds it
// and fails when the committed file differs.
package explorer

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed assets
var assets embed.FS

// CSP is the Content-Security-Policy of every answer of the explorer.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// AssetPrefix is the path under which the assets are served.
const AssetPrefix = "/explorer/"

// Pages are the paths of the pages; a path ending in "/" stands for every
// path under it (/entries/{index}).
var Pages = []string{"/", "/search", "/checkpoints", "/verify", "/entries/"}

// IsPage reports whether p is the path of a page or of an asset.
func IsPage(p string) bool {
	if strings.HasPrefix(p, AssetPrefix) {
		return true
	}
	for _, page := range Pages {
		if page != "/" && strings.HasSuffix(page, "/") {
			if strings.HasPrefix(p, page) && len(p) > len(page) {
				return true
			}
		} else if p == page {
			return true
		}
	}
	return false
}

// Serves reports whether Handler answers path with a page or an asset (and
// not 404): a server answers every other path with its own error.
func Serves(p string) bool {
	if name, ok := strings.CutPrefix(p, AssetPrefix); ok {
		if name == "" || name == "index.html" || path.Clean("/"+name) != "/"+name {
			return false
		}
		st, err := fs.Stat(assets, "assets/"+name)
		return err == nil && !st.IsDir()
	}
	return IsPage(p)
}

// Handler serves the pages and the assets. Every answer carries the CSP
// and X-Content-Type-Options: nosniff; a path that is neither a page nor
// an asset is 404 (plain text: the server's router answers its own paths).
func Handler() http.Handler {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded tree always has assets/
	}
	index, err := fs.ReadFile(sub, "index.html")
	if err != nil {
		panic(err)
	}
	files := http.StripPrefix(AssetPrefix, http.FileServer(http.FS(sub)))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		p := r.URL.Path
		switch {
		case strings.HasPrefix(p, AssetPrefix):
			name := strings.TrimPrefix(p, AssetPrefix)
			if name == "" || name == "index.html" || path.Clean("/"+name) != "/"+name {
				http.NotFound(w, r)
				return
			}
			h.Set("Cache-Control", "no-cache")
			files.ServeHTTP(w, r)
		case IsPage(p):
			h.Set("Content-Type", "text/html; charset=utf-8")
			h.Set("Cache-Control", "no-cache")
			if r.Method != http.MethodHead {
				_, _ = w.Write(index)
			}
		default:
			http.NotFound(w, r)
		}
	})
}

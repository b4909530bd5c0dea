package server

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"

	"github.com/govlog/govlog/log"
)

// The C2SP tlog-tiles read API (c2sp.org/tlog-tiles), for auditors,
// monitors and mirrors:
//
//	GET /checkpoint                    the latest checkpoint, as GET /v1/checkpoint
//	GET /tile/<L>/<N>[.p/<W>]          hash tile
//	GET /tile/entries/<N>[.p/<W>]      entry bundle
//
// Tiles and bundles come from the backend when it implements
// log.TileReader (the embedded backend stores its tree as tiles); on any
// other backend (Trillian) they are derived from its entries and
// inclusion proofs by log.DerivedTiles, which caches full tiles. A full
// tile never changes, and neither does a
// partial tile of a given width (it is a prefix of the full one), so both
// are served with a year-long immutable cache lifetime; an absent tile may
// appear later, so its 404 must not be cached, nor may the checkpoint.

// Cache-Control values of the tiles API.
const (
	cacheImmutable = "public, max-age=31536000, immutable"
	cacheNever     = "no-cache"
	cacheNoStore   = "no-store"
)

// derivedTileCache is the number of full tiles DerivedTiles keeps (8 KiB
// each).
const derivedTileCache = 4096

// tileSource picks the TileReader of a backend once.
type tileSource struct {
	once sync.Once
	r    log.TileReader
}

func (t *tileSource) reader(b log.Backend) log.TileReader {
	t.once.Do(func() {
		if r, ok := b.(log.TileReader); ok {
			t.r = r
		} else {
			t.r = log.DerivedTiles(b, derivedTileCache)
		}
	})
	return t.r
}

// getTilesCheckpoint handles GET /checkpoint: the checkpoint of GET
// /v1/checkpoint, which clients must revalidate at every fetch.
func (s *Server) getTilesCheckpoint(c echo.Context, q query) error {
	// SPEC: "This endpoint is mutable, so its headers SHOULD prevent
	// caching beyond a few seconds."
	c.Response().Header().Set("Cache-Control", cacheNever)
	return s.getCheckpoint(c, q)
}

// getTile handles GET /tile/…: a hash tile or an entry bundle.
func (s *Server) getTile(c echo.Context, _ query) error {
	h := c.Response().Header()
	h.Set("Cache-Control", cacheNoStore)
	id, err := log.ParseTilePath(strings.TrimPrefix(c.Request().URL.Path, "/"))
	if err != nil {
		return &apiError{http.StatusNotFound, codeNotFound, clip(err.Error())}
	}
	tr := s.tiles.reader(s.log.Backend())
	ctx := c.Request().Context()
	var data []byte
	if id.Entries {
		data, err = tr.ReadEntryBundle(ctx, id.Index, id.Width)
	} else {
		data, err = tr.ReadTile(ctx, id.Level, id.Index, id.Width)
	}
	if err != nil {
		return err
	}
	h.Set("Cache-Control", cacheImmutable)
	// SPEC: "Entry bundles SHOULD be compressed at the HTTP layer. Logs MAY
	// use Content-Encoding: gzip with no negotiation, or any compression
	// algorithm requested by the client with Accept-Encoding." Hash tiles
	// do not compress.
	if id.Entries {
		h.Add("Vary", "Accept-Encoding")
		if acceptsGzip(c.Request().Header.Values("Accept-Encoding")) {
			z, err := gzipped(data)
			if err != nil {
				return err
			}
			h.Set("Content-Encoding", "gzip")
			data = z
		}
	}
	return c.Blob(http.StatusOK, echo.MIMEOctetStream, data)
}

// gzipped compresses data, favouring speed: entry bundles are compressed
// at every request.
func gzipped(data []byte) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(len(data) / 3)
	w, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return nil, fmt.Errorf("failed to compress an entry bundle: %w", err)
	}
	if _, err := w.Write(data); err != nil {
		return nil, fmt.Errorf("failed to compress an entry bundle: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("failed to compress an entry bundle: %w", err)
	}
	return buf.Bytes(), nil
}

// acceptsGzip reports whether Accept-Encoding header values accept gzip
// (RFC 9110 §12.5.3): listed as gzip (or x-gzip) with a non-zero quality,
// or covered by "*" with a non-zero quality without being listed.
func acceptsGzip(values []string) bool {
	star, listed := false, false
	for _, v := range values {
		for item := range strings.SplitSeq(v, ",") {
			name, params, _ := strings.Cut(strings.TrimSpace(item), ";")
			name = strings.ToLower(strings.TrimSpace(name))
			q := 1.0
			for p := range strings.SplitSeq(params, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
				if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
					if f, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
						q = f
					}
				}
			}
			switch name {
			case "gzip", "x-gzip":
				if q <= 0 {
					return false
				}
				listed = true
			case "*":
				star = q > 0
			}
		}
	}
	return listed || star
}

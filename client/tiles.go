package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/verifier"
)

// Size limits of the resources of the tiles API.
const (
	// maxBundleBytes bounds an entry bundle: 256 entries of at most
	// 65,535 bytes, each with its 2-byte length.
	maxBundleBytes = log.TileWidth * (log.MaxEntryBytes + 2)
	// maxTileBytes is the size of a full hash tile.
	maxTileBytes = log.TileWidth * 32
)

// TilesCheckpoint returns the checkpoint note the log serves at
// GET /checkpoint (C2SP tlog-tiles), unverified.
func (c *Client) TilesCheckpoint(ctx context.Context) ([]byte, error) {
	data, err := c.fetch(ctx, "/checkpoint", verifier.MaxCheckpointBytes, true)
	if err != nil {
		return nil, fmt.Errorf("failed to get the checkpoint: %w", err)
	}
	return data, nil
}

// Tile returns hash tile (level, index) of width hashes (log.TileWidth for
// the full tile) from the tiles API, unverified. It fails unless the log
// serves exactly width hashes.
func (c *Client) Tile(ctx context.Context, level, index uint64, width int) ([]byte, error) {
	t := log.TileID{Level: level, Index: index, Width: width}
	data, err := c.fetch(ctx, "/"+t.Path(), maxTileBytes, true)
	if err != nil {
		return nil, fmt.Errorf("failed to get %s: %w", t.Path(), err)
	}
	if len(data) != width*32 {
		return nil, fmt.Errorf("failed to get %s: it holds %d bytes, want %d", t.Path(), len(data), width*32)
	}
	return data, nil
}

// EntryBundle returns entry bundle index of width entries from the tiles
// API, unverified (parse it with log.ParseEntryBundle).
func (c *Client) EntryBundle(ctx context.Context, index uint64, width int) ([]byte, error) {
	t := log.TileID{Entries: true, Index: index, Width: width}
	data, err := c.fetch(ctx, "/"+t.Path(), maxBundleBytes, true)
	if err != nil {
		return nil, fmt.Errorf("failed to get %s: %w", t.Path(), err)
	}
	return data, nil
}

// ConsistencyProof returns the log's RFC 6962 consistency proof between two
// tree sizes (GET /v1/proofs/consistency), unverified.
func (c *Client) ConsistencyProof(ctx context.Context, from, to uint64) ([][]byte, error) {
	path := "/v1/proofs/consistency?from=" + strconv.FormatUint(from, 10) + "&to=" + strconv.FormatUint(to, 10)
	data, err := c.fetch(ctx, path, maxResponseBytes, false)
	if err != nil {
		return nil, fmt.Errorf("failed to get the consistency proof from %d to %d: %w", from, to, err)
	}
	var p struct {
		From   uint64   `json:"from"`
		To     uint64   `json:"to"`
		Hashes [][]byte `json:"hashes"`
	}
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("failed to decode the consistency proof from %d to %d: %w", from, to, err)
	}
	if p.From != from || p.To != to {
		return nil, fmt.Errorf("failed to get the consistency proof from %d to %d: the log sent one from %d to %d", from, to, p.From, p.To)
	}
	return p.Hashes, nil
}

// fetch GETs path (which may carry a query) and returns a 200 body of at
// most limit bytes, retrying like every request of the client. raw asks
// for any content type; otherwise JSON is expected.
func (c *Client) fetch(ctx context.Context, path string, limit int64, raw bool) ([]byte, error) {
	p, query, _ := strings.Cut(path, "?")
	u := c.base.JoinPath(p)
	u.RawQuery = query
	return c.fetchURL(ctx, u, limit, raw)
}

// fetchURL is fetch of an absolute URL.
func (c *Client) fetchURL(ctx context.Context, u *url.URL, limit int64, raw bool) ([]byte, error) {
	var body []byte
	err := c.retry(ctx, http.MethodGet, u.Path, func() (retryAfter time.Duration, err error) {
		body, retryAfter, err = c.fetchOnce(ctx, u.String(), limit, raw)
		return retryAfter, err
	})
	if err != nil {
		return nil, err
	}
	return body, nil
}

func (c *Client) fetchOnce(ctx context.Context, u string, limit int64, raw bool) ([]byte, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("failed to build the request: %w", err)
	}
	if raw {
		req.Header.Set("Accept", "*/*")
	} else {
		req.Header.Set("Accept", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, 0, &transportError{err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		ae := apiError(resp, data)
		return nil, ae.RetryAfter, ae
	}
	if resp.ContentLength > limit {
		return nil, 0, fmt.Errorf("the response is %d bytes, larger than %d", resp.ContentLength, limit)
	}
	buf := make([]byte, 0, max(min(resp.ContentLength, limit), 512))
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := resp.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return nil, 0, fmt.Errorf("the response is larger than %d bytes", limit)
		}
		if err == io.EOF {
			return buf, 0, nil
		}
		if err != nil {
			return nil, 0, &transportError{fmt.Errorf("failed to read the response: %w", err)}
		}
	}
}

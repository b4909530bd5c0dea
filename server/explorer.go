package server

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/govlog/govlog/internal/explorer"
)

// handleExplorer routes the explorer's pages and assets (package
// internal/explorer) for GET and HEAD. Their query strings are the page's
// business (/search?subject=…), so they are not parsed here. With
// Config.AuthRead the pages themselves need no token (publicRead): they
// hold no log data, and every API request the page makes carries the
// token the page asked for.
func (s *Server) handleExplorer() {
	files := echo.WrapHandler(explorer.Handler())
	h := func(c echo.Context) error {
		// What the explorer does not serve is the API's 404: JSON, as
		// every error.
		if !explorer.Serves(c.Request().URL.Path) {
			return &apiError{http.StatusNotFound, codeNotFound, "no such resource"}
		}
		return files(c)
	}
	for _, p := range explorer.Pages {
		if strings.HasSuffix(p, "/") && p != "/" {
			p += "*"
		}
		s.routeRaw(p, h)
	}
	s.routeRaw(explorer.AssetPrefix+"*", h)
}

// routeRaw routes GET and HEAD of path to h without parsing the query.
func (s *Server) routeRaw(path string, h echo.HandlerFunc) {
	s.routes[path] = http.MethodGet + ", " + http.MethodHead
	s.echo.Add(http.MethodGet, path, h)
	s.echo.Add(http.MethodHead, path, h)
}

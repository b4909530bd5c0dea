package main

import (
	"fmt"
	"image/color"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Chart size: small PNGs for the docs (as make bench's).
const chartW, chartH = 6 * vg.Inch, 3.6 * vg.Inch

var palette = []color.Color{
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
}

// chartFiles are the charts, in the report's order.
var chartFiles = []struct{ file, title string }{
	{"memory.png", "resident memory over time"},
	{"goroutines.png", "goroutines over time"},
	{"fds.png", "open files over time"},
	{"latency.png", "latency over time"},
	{"storage.png", "SQLite files over time"},
}

// series is one line of a chart.
type series struct {
	name string
	get  func(sample) float64
}

// charts writes the PNG charts into dir.
func (r *report) charts(dir string) error {
	perWitness := func(f func(witnessSample) float64) []series {
		var ss []series
		for i, name := range r.Witnesses {
			ss = append(ss, series{name, func(s sample) float64 { return f(s.Witnesses[i]) }})
		}
		return ss
	}
	charts := []struct {
		title, ylabel string
		log           bool
		lines         []series
	}{
		{"Resident memory", "MiB", false, append([]series{
			{"govlogd RSS", func(s sample) float64 { return s.RSSMiB }},
			{"govlogd heap in use", func(s sample) float64 { return s.HeapMiB }},
		}, perWitness(func(w witnessSample) float64 { return w.RSSMiB })...)},
		{"Goroutines", "goroutines", false, append([]series{
			{"govlogd", func(s sample) float64 { return float64(s.Goroutines) }},
		}, perWitness(func(w witnessSample) float64 { return float64(w.Goroutines) })...)},
		{"Open file descriptors", "open files", false, append([]series{
			{"govlogd", func(s sample) float64 { return float64(s.FDs) }},
			{"govlogd sockets", func(s sample) float64 { return float64(s.Sockets) }},
		}, perWitness(func(w witnessSample) float64 { return float64(w.FDs) })...)},
		{fmt.Sprintf("Latency per interval (single decisions at %.0f/s from due time; reads)", r.Options.rate), "ms (log scale)", true, []series{
			{"decisions p50", func(s sample) float64 { return s.P50 }},
			{"decisions p99", func(s sample) float64 { return s.P99 }},
			{"decisions p99.9", func(s sample) float64 { return s.P999 }},
			{"reads p99", func(s sample) float64 { return s.ReadP99 }},
		}},
		{"SQLite files of govlogd", "MiB", false, []series{
			{"log.db", func(s sample) float64 { return mib(s.LogDB) }},
			{"log.db-wal", func(s sample) float64 { return mib(s.LogWAL) }},
			{"cosigned.db + WAL", func(s sample) float64 { return mib(s.CosDB + s.CosWAL) }},
		}},
	}
	for i, c := range charts {
		if err := r.lineChart(filepath.Join(dir, chartFiles[i].file), c.title, c.ylabel, c.log, c.lines); err != nil {
			return err
		}
	}
	return nil
}

// lineChart plots series over the minutes of the run.
func (r *report) lineChart(path, title, ylabel string, logY bool, lines []series) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "minutes into the load"
	p.Y.Label.Text = ylabel
	p.X.Min = 0
	if logY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	} else {
		p.Y.Min = 0
	}
	p.Add(plotter.NewGrid())
	// The legend goes top left, above the lines: room for it above the
	// highest point.
	p.Legend.Top, p.Legend.Left = true, true
	top := 0.0
	for _, l := range lines {
		for _, s := range r.Samples {
			top = max(top, l.get(s))
		}
	}
	if logY {
		p.Y.Max = max(top, 1) * 30
	} else {
		p.Y.Max = max(top, 1) * (1.15 + 0.08*float64(len(lines)))
	}
	for i, l := range lines {
		pts := make(plotter.XYs, len(r.Samples))
		for j, s := range r.Samples {
			y := l.get(s)
			if logY {
				y = max(y, 0.01) // log scale: no zero
			}
			pts[j] = plotter.XY{X: s.At.Minutes(), Y: y}
		}
		line, dots, err := plotter.NewLinePoints(pts)
		if err != nil {
			return fmt.Errorf("failed to plot %s: %w", title, err)
		}
		line.Color, dots.Color = palette[i%len(palette)], palette[i%len(palette)]
		dots.Shape = draw.CircleGlyph{}
		dots.Radius = vg.Points(1.5)
		p.Add(line, dots)
		p.Legend.Add(l.name, line)
	}
	if err := p.Save(chartW, chartH, path); err != nil {
		return fmt.Errorf("failed to save %s: %w", path, err)
	}
	return nil
}

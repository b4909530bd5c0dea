package main

import (
	"fmt"
	"image/color"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Chart size: small PNGs for the docs.
const chartW, chartH = 6 * vg.Inch, 3.6 * vg.Inch

var palette = []color.Color{
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
}

// throughputChart plots the batch append throughput over the tree size.
func throughputChart(path string, backends []*backendResult) error {
	p := plot.New()
	p.Title.Text = "Append throughput (batch endpoint) over tree size"
	p.X.Label.Text = "tree size (entries)"
	p.Y.Label.Text = "decisions/s"
	p.X.Min, p.Y.Min = 0, 0
	p.Add(plotter.NewGrid())
	// Bottom right: the embedded line runs above it, Trillian's at the left.
	p.Legend.Top, p.Legend.Left = false, false
	for i, be := range backends {
		if len(be.Fill) == 0 {
			continue
		}
		pts := make(plotter.XYs, len(be.Fill))
		for j, s := range be.Fill {
			pts[j] = plotter.XY{X: float64(s.Size), Y: s.PerSecond}
		}
		line, dots, err := plotter.NewLinePoints(pts)
		if err != nil {
			return fmt.Errorf("failed to plot: %w", err)
		}
		line.Color, dots.Color = palette[i%len(palette)], palette[i%len(palette)]
		dots.Shape = draw.CircleGlyph{}
		p.Add(line, dots)
		p.Legend.Add(be.Name, line, dots)
	}
	if err := p.Save(chartW, chartH, path); err != nil {
		return fmt.Errorf("failed to save %s: %w", path, err)
	}
	return nil
}

// latencyChart plots the CDF of the open-loop latencies, log-scale.
func latencyChart(path string, backends []*backendResult, rate float64) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Receipt latency CDF, open loop at %.0f decisions/s", rate)
	p.X.Label.Text = "latency from due time (ms, log scale)"
	p.Y.Label.Text = "fraction of requests"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Y.Min, p.Y.Max = 0, 1
	p.Add(plotter.NewGrid())
	// Left of the middle, between the curves of fast and slow backends.
	p.Legend.Top, p.Legend.Left = false, true
	p.Legend.XOffs, p.Legend.YOffs = 1.5*vg.Inch, 1.1*vg.Inch
	for i, be := range backends {
		lat := be.Open.Latencies
		if len(lat) == 0 {
			continue
		}
		pts := cdf(lat, 400)
		line, err := plotter.NewLine(pts)
		if err != nil {
			return fmt.Errorf("failed to plot: %w", err)
		}
		line.Color = palette[i%len(palette)]
		line.Width = vg.Points(1.5)
		p.Add(line)
		p.Legend.Add(be.Name, line)
	}
	if err := p.Save(chartW, chartH, path); err != nil {
		return fmt.Errorf("failed to save %s: %w", path, err)
	}
	return nil
}

// cdf samples the sorted latencies at most n+1 times: (ms, fraction ≤).
// Latencies are floored at 10 µs for the log scale.
func cdf(sorted []time.Duration, n int) plotter.XYs {
	step := max(len(sorted)/n, 1)
	var pts plotter.XYs
	for i := 0; i < len(sorted); i += step {
		pts = append(pts, plotter.XY{X: max(float64(sorted[i])/1e6, 0.01), Y: float64(i+1) / float64(len(sorted))})
	}
	if last := len(sorted) - 1; (last)%step != 0 {
		pts = append(pts, plotter.XY{X: max(float64(sorted[last])/1e6, 0.01), Y: 1})
	}
	return pts
}

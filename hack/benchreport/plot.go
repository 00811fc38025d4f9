package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// restartPoint is one fold size's restart figures.
type restartPoint struct {
	keys, slipMs, naiveMs float64
}

// restartPoints collects the restart-* jobs that produced figures, by fold size.
func (rs *results) restartPoints() []restartPoint {
	var pts []restartPoint
	for _, j := range rs.info.Jobs {
		d := rs.jobs[j.ID]
		if !strings.HasPrefix(j.ID, "restart-") || d.Exit != 0 {
			continue
		}
		v := d.values["RestartVsNaive"]
		keys, ok1 := v["keys"]
		slip, ok2 := v["restart_ms"]
		naive, ok3 := v["naive_ms"]
		if ok1 && ok2 && ok3 && keys > 0 && slip > 0 && naive > 0 {
			pts = append(pts, restartPoint{keys, slip, naive})
		}
	}
	slices.SortFunc(pts, func(a, b restartPoint) int { return int(a.keys - b.keys) })
	return pts
}

// writeRestartPlot draws restart time against fold size (log-log) for Slipstream and the
// naive WatchAll replay into a PNG. It writes nothing and returns false without points.
func writeRestartPlot(rs *results, path string) (bool, error) {
	pts := rs.restartPoints()
	if len(pts) == 0 {
		return false, nil
	}
	p := plot.New()
	p.Title.Text = "Restart time against fold size (1,000 updates behind)"
	if rs.info.Mode != "full" {
		p.Title.Text += ", QUICK run"
	}
	if busy(rs.info.LoadStart, rs.info.Machine.Cores) {
		p.Title.Text += fmt.Sprintf("\nshared machine: load %s on %d cores at the start", strings.Fields(rs.info.LoadStart)[0], rs.info.Machine.Cores)
	}
	p.X.Label.Text = "keys in the fold (256-byte values)"
	p.Y.Label.Text = "time until caught up (log scale)"
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker = sizeTicks(pts)
	p.Y.Tick.Marker = msTicks{}
	p.Add(plotter.NewGrid())
	slip, naive := make(plotter.XYs, len(pts)), make(plotter.XYs, len(pts))
	for i, pt := range pts {
		slip[i] = plotter.XY{X: pt.keys, Y: pt.slipMs}
		naive[i] = plotter.XY{X: pt.keys, Y: pt.naiveMs}
	}
	for _, s := range []struct {
		name  string
		xys   plotter.XYs
		color int
		shape draw.GlyphDrawer
	}{
		{"Slipstream pebble fold: open + verified resume + delta", slip, 0, draw.CircleGlyph{}},
		{"naive: jetstream KeyValue.WatchAll into a map (full replay)", naive, 1, draw.TriangleGlyph{}},
	} {
		l, sc, err := plotter.NewLinePoints(s.xys)
		if err != nil {
			return false, err
		}
		l.Color = plotutil.Color(s.color)
		l.Width = vg.Points(2)
		sc.Color = plotutil.Color(s.color)
		sc.Shape = s.shape
		sc.Radius = vg.Points(4)
		p.Add(l, sc)
		p.Legend.Add(s.name, l, sc)
		for _, xy := range s.xys {
			lbl, err := plotter.NewLabels(plotter.XYLabels{XYs: plotter.XYs{xy}, Labels: []string{durationLabel(xy.Y)}})
			if err != nil {
				return false, err
			}
			lbl.Offset = vg.Point{X: vg.Points(6), Y: vg.Points(-4)}
			p.Add(lbl)
		}
	}
	p.Legend.Top = true
	p.Legend.Left = true
	// Room for the labels and the legend above the highest point.
	p.Y.Max *= 8
	p.X.Min /= 2
	p.X.Max *= 3
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return false, err
	}
	if err := p.Save(8*vg.Inch, 5*vg.Inch, path); err != nil {
		return false, fmt.Errorf("save %s: %w", path, err)
	}
	return true, nil
}

// sizeTicks labels the x axis at the measured fold sizes.
type sizeTicks []restartPoint

func (t sizeTicks) Ticks(_, _ float64) []plot.Tick {
	ticks := make([]plot.Tick, len(t))
	for i, pt := range t {
		ticks[i] = plot.Tick{Value: pt.keys, Label: sizeLabel(int(pt.keys))}
	}
	return ticks
}

// msTicks labels a logarithmic millisecond axis at 1, 2 and 5 times each power of ten.
type msTicks struct{}

func (msTicks) Ticks(lo, hi float64) []plot.Tick {
	var ticks []plot.Tick
	for decade := math.Pow(10, math.Floor(math.Log10(lo))); decade <= hi; decade *= 10 {
		for _, m := range []float64{1, 2, 5} {
			if v := m * decade; v >= lo && v <= hi {
				ticks = append(ticks, plot.Tick{Value: v, Label: durationLabel(v)})
			}
		}
	}
	return ticks
}

func durationLabel(ms float64) string {
	switch {
	case ms >= 100_000:
		return fmt.Sprintf("%.0f s", ms/1000)
	case ms >= 1000:
		return strconv.FormatFloat(ms/1000, 'g', 3, 64) + " s"
	default:
		return fmt.Sprintf("%.0f ms", ms)
	}
}

package main

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/artnet/artnet/datadl"
)

// dataCommand is `artnet data`, with `download` (the WikiArt/ArtGAN splits and images) and
// `report` (what the data holds: datareport.go).
func dataCommand() *cli.Command {
	return &cli.Command{
		Name:        "data",
		Usage:       "get and describe the WikiArt data",
		Subcommands: []*cli.Command{dataDownloadCommand(), dataReportCommand()},
	}
}

func dataDownloadCommand() *cli.Command {
	return &cli.Command{
		Name:  "download",
		Usage: "download the ArtGAN split files and the WikiArt image archive (~25 GB), unpacked into DEST/images",
		Description: "Split files come from " + datadl.DefaultBaseURL + ",\n" +
			"the images from " + datadl.DefaultArchiveURL + ".\n" +
			"Interrupted downloads resume (HTTP Range); a rerun skips what is complete. The split files are checked\n" +
			"against built-in sizes and sha256; --manifest adds or replaces expectations (JSON: {\"wikiart.zip\": {\"size\": N, \"sha256\": \"…\"}}).\n" +
			"WikiArt images are for non-commercial research only; WikiArt.org's terms of use apply.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dest", Usage: "destination folder (split files, wikiart.zip, images/)"},
			&cli.StringFlag{Name: "base-url", Usage: "a mirror holding the split files (in the repository's Style/, Genre/, Artist/ layout) and wikiart.zip (default: the ArtGAN repository and the authors' server)"},
			&cli.StringFlag{Name: "archive-url", Usage: "the image archive's URL (overrides --base-url for the archive)"},
			&cli.StringFlag{Name: "manifest", Usage: "JSON file of expected sizes and sha256 per file name"},
			&cli.BoolFlag{Name: "no-images", Usage: "fetch only the split files"},
			&cli.BoolFlag{Name: "remove-archive", Usage: "delete wikiart.zip once unpacked"},
			&cli.IntFlag{Name: "retries", Value: 5, Usage: "retries of an interrupted transfer (each resumes where it stopped)"},
			&cli.DurationFlag{Name: "stall-timeout", Value: 60 * time.Second, Usage: "abort and retry a transfer that receives nothing this long"},
			&cli.BoolFlag{Name: "progress", Value: true, Usage: "show a progress bar when stderr is a terminal (log lines otherwise)"},
		},
		Action: func(c *cli.Context) error {
			if c.String("dest") == "" {
				return fmt.Errorf("data download: flag --dest: give the destination folder")
			}
			if c.Int("retries") < 0 {
				return fmt.Errorf("data download: flag --retries: must be ≥ 0, got %d", c.Int("retries"))
			}
			var man datadl.Manifest
			if p := c.String("manifest"); p != "" {
				m, err := datadl.ReadManifest(p)
				if err != nil {
					return err
				}
				man = m
			}
			f := datadl.Fetcher{Retries: c.Int("retries"), Stall: c.Duration("stall-timeout"), Log: slog.Default()}
			if c.Bool("progress") {
				if fd, ok := c.App.ErrWriter.(*os.File); ok && term.IsTerminal(int(fd.Fd())) {
					f.Progress = &datadl.BarProgress{W: fd}
				} else {
					f.Progress = &datadl.LogProgress{Log: slog.Default()}
				}
			}
			rep, err := datadl.Download(c.Context, datadl.Options{
				Dest: c.String("dest"), BaseURL: c.String("base-url"), ArchiveURL: c.String("archive-url"),
				Manifest: man, NoImages: c.Bool("no-images"), RemoveArchive: c.Bool("remove-archive"), Fetcher: f,
			})
			if err != nil {
				return err
			}
			fetched, skipped := 0, 0
			for _, r := range rep.Files {
				if r.Skipped {
					skipped++
				} else {
					fetched++
				}
			}
			fmt.Fprintf(c.App.Writer, "%s: %d files downloaded, %d already there\n", c.String("dest"), fetched, skipped)
			if rep.Unzip != nil {
				fmt.Fprintf(c.App.Writer, "%s: %d images unpacked, %d already there\n", rep.Images, rep.Unzip.Extracted, rep.Unzip.Skipped)
			}
			return nil
		},
	}
}

package datadl

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/artnet/artnet/internal/atomicfile"
)

// Default sources, from the ArtGAN repository's README (cs-chan/ArtGAN, folder "WikiArt
// Dataset/"). Tests never contact them.
const (
	// DefaultBaseURL holds the split files, in per-task folders (see SplitFiles).
	DefaultBaseURL = "https://raw.githubusercontent.com/cs-chan/ArtGAN/master/WikiArt%20Dataset"
	// DefaultArchiveURL is the WikiArt image archive (about 25.4 GB; the README's mirror).
	DefaultArchiveURL = "http://web.fsktm.um.edu.my/~cschan/source/ICIP2017/wikiart.zip"
	// ArchiveName is the archive's file name in DEST.
	ArchiveName = "wikiart.zip"
	// UnpackedMarker, in DEST/images, records a finished unpacking, so that a rerun after the
	// archive was removed does not fetch it again.
	UnpackedMarker = ".artnet-unpacked.json"
)

// Source is one split file: where it is under the base URL and what it must be.
type Source struct {
	Name   string // local file name in DEST, as package wikiart reads it
	Remote string // path under the base URL
	Expect
}

// SplitFiles are the nine split files. The repository names some without extension
// (Artist/artist_train, Genre/genre_class); they are saved under the names wikiart reads.
// Sizes and sha256 are those of the repository's master branch (and of ../shared/wikiart).
var SplitFiles = []Source{
	{"style_class.txt", "Style/style_class.txt", Expect{462, "344b1d3afb09990fa55b5342d6bd181d272efa517db604f44163f28272f739c6"}},
	{"style_train.csv", "Style/style_train.csv", Expect{3658221, "5a70342fe9f72a90e68af6c6aae1eb6b7852d7ddd360eb9d6a5558f4d78b4123"}},
	{"style_val.csv", "Style/style_val.csv", Expect{1575672, "9a28b6416fec793c9baf21fb1999fd3a28704d5a7b51ef78158b8fba6c1a1984"}},
	{"genre_class.txt", "Genre/genre_class", Expect{156, "04f1de73a499a43a832fb9bac5440af09ac01e5355a584a65b35cd89a2ef1fd1"}},
	{"genre_train.csv", "Genre/genre_train.csv", Expect{2900018, "151e0d874eaa2cfae2ccd95d19b2eba909c5eabc2f68150b66ab516afae22d34"}},
	{"genre_val.csv", "Genre/genre_val.csv", Expect{1248086, "05b683e5be29bb09afe4bc94dc8140b238f36db6fe67121ca7a04fee4c4fcb95"}},
	{"artist_class.txt", "Artist/artist_class", Expect{406, "0f2730f1036d9806d3ed795011a2e3cd007f97629b7f0e70a8b524d8d7ccfe24"}},
	{"artist_train.csv", "Artist/artist_train", Expect{865969, "0eb243e9a5fa35ee2345dd042746b1c4596637e52c92d9618d0cf3701c2d423f"}},
	{"artist_val.csv", "Artist/artist_val", Expect{370384, "8c6814ca84e0308bf8bbf80bc4e35e1c2c42247fa79867cbdf388c3f758de67e"}},
}

// Manifest maps local file names (e.g. "wikiart.zip", "style_train.csv") to what they must
// be; an entry replaces the built-in expectation of that file.
type Manifest map[string]Expect

// ReadManifest reads a JSON manifest: {"wikiart.zip": {"size": N, "sha256": "hex"}, …}.
func ReadManifest(path string) (Manifest, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("datadl: manifest: %w", err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("datadl: manifest %s: %v", path, err)
	}
	for name, e := range m {
		if e.Size < 0 {
			return nil, fmt.Errorf("datadl: manifest %s: %s: size %d", path, name, e.Size)
		}
		if e.SHA256 != "" && (len(e.SHA256) != 64 || strings.Trim(strings.ToLower(e.SHA256), "0123456789abcdef") != "") {
			return nil, fmt.Errorf("datadl: manifest %s: %s: sha256 %q is not 64 hex digits", path, name, e.SHA256)
		}
	}
	return m, nil
}

// Options say what Download fetches and where.
type Options struct {
	// Dest receives the split files, wikiart.zip and images/.
	Dest string
	// BaseURL replaces DefaultBaseURL: split files are fetched from BaseURL/<Source.Remote>,
	// and, unless ArchiveURL is set, the archive from BaseURL/wikiart.zip (a mirror of both).
	BaseURL string
	// ArchiveURL replaces the archive's URL.
	ArchiveURL string
	// Manifest adds or replaces expected sizes and sha256 (nil: the built-in ones only).
	Manifest Manifest
	// NoImages fetches the split files only.
	NoImages bool
	// RemoveArchive deletes wikiart.zip once unpacked (a marker in images/ keeps a rerun from
	// fetching it again).
	RemoveArchive bool
	Fetcher
}

// Report says what Download did.
type Report struct {
	Files  []FetchResult `json:"files"`
	Unzip  *UnzipResult  `json:"unzip,omitempty"`
	Images string        `json:"images,omitempty"`
}

// Download fetches the split files and (unless NoImages) the image archive into o.Dest and
// unpacks the archive into o.Dest/images. Rerunning it skips what is complete and resumes
// what is not.
func Download(ctx context.Context, o Options) (*Report, error) {
	if o.Dest == "" {
		return nil, fmt.Errorf("datadl: destination folder not given")
	}
	if err := os.MkdirAll(o.Dest, 0o755); err != nil {
		return nil, fmt.Errorf("datadl: %w", err)
	}
	base := strings.TrimSuffix(o.BaseURL, "/")
	if base == "" {
		base = DefaultBaseURL
	}
	expect := func(name string, builtin Expect) Expect {
		if e, ok := o.Manifest[name]; ok {
			return e
		}
		return builtin
	}
	rep := &Report{}
	for _, s := range SplitFiles {
		r, err := o.Fetch(ctx, base+"/"+s.Remote, filepath.Join(o.Dest, s.Name), expect(s.Name, s.Expect))
		if err != nil {
			return rep, err
		}
		rep.Files = append(rep.Files, r)
	}
	if o.NoImages {
		return rep, nil
	}
	archiveURL := o.ArchiveURL
	if archiveURL == "" {
		archiveURL = DefaultArchiveURL
		if o.BaseURL != "" {
			archiveURL = base + "/" + ArchiveName
		}
	}
	images := filepath.Join(o.Dest, "images")
	rep.Images = images
	archive := filepath.Join(o.Dest, ArchiveName)
	marker := filepath.Join(images, UnpackedMarker)
	if _, err := os.Stat(archive); err != nil {
		if b, err := os.ReadFile(marker); err == nil {
			var u UnzipResult
			if json.Unmarshal(b, &u) == nil {
				o.log().Info("images already unpacked; archive not fetched again", "marker", marker)
				rep.Unzip = &u
				return rep, nil
			}
		}
	}
	r, err := o.Fetch(ctx, archiveURL, archive, expect(ArchiveName, Expect{}))
	if err != nil {
		return rep, err
	}
	rep.Files = append(rep.Files, r)
	u, err := Unzip(ctx, archive, images, o.log())
	if err != nil {
		return rep, err
	}
	rep.Unzip = &u
	o.log().Info("unpacked", "archive", archive, "into", images, "extracted", u.Extracted, "skipped", u.Skipped, "ignored", u.Ignored)
	b, _ := json.Marshal(u)
	if err := atomicfile.WriteFile(marker, b, 0o644); err != nil {
		return rep, fmt.Errorf("datadl: %w", err)
	}
	if o.RemoveArchive {
		if err := os.Remove(archive); err != nil {
			return rep, fmt.Errorf("datadl: %w", err)
		}
	}
	return rep, nil
}

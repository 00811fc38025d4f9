// Command imagepack packs one static Linux binary into a container image tarball (the
// `docker save` layout that `ctr images import` reads), so the local test cluster runs the
// manager and agent without a registry or a container engine.
//
//	imagepack -binary bin/agent -name slipstream/agent:dev -out bin/images/agent.tar \
//	    [-path /agent] [-ca-bundle /etc/ssl/certs/ca-certificates.crt] [-user UID[:GID]]
//
// The image has one layer: the binary (mode 0755, also the entrypoint), /tmp (mode 1777, for
// a container with readOnlyRootFilesystem that mounts an emptyDir there or needs the
// directory), /etc/passwd and /etc/group naming root (0) and nonroot (65532), and optionally
// a CA bundle at /etc/ssl/certs/ca-certificates.crt (where Go looks for the system roots).
// The platform (linux/amd64, linux/arm64, ...) is read from the binary's ELF header; a
// dynamically linked binary is refused (the image has no libc). Every timestamp is the Unix
// epoch, so the same binary always gives the same image digest.
//
// On success it prints "<reference> <image id>" (the id is the config digest, what
// `ctr images` and the kubelet know the image by), which the Makefile uses to skip an import
// that is already there.
package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// caBundlePath is where Go's crypto/x509 looks for the system roots on Debian-like systems.
const caBundlePath = "/etc/ssl/certs/ca-certificates.crt"

// epoch is the modification time of every file and of the image itself (reproducible digests).
var epoch = time.Unix(0, 0).UTC()

// userRE is the accepted form of -user: numeric UID with an optional numeric GID (a name would
// defeat the kubelet's runAsNonRoot check, which needs a number).
var userRE = regexp.MustCompile(`^[0-9]+(:[0-9]+)?$`)

type options struct {
	binary   string
	ref      string
	out      string
	path     string
	caBundle string
	user     string
}

func main() {
	var o options
	flag.StringVar(&o.binary, "binary", "", "static Linux binary to pack (required)")
	flag.StringVar(&o.ref, "name", "", "image reference with an explicit tag, e.g. slipstream/agent:dev (required)")
	flag.StringVar(&o.out, "out", "", "image tarball to write (required; replaced atomically)")
	flag.StringVar(&o.path, "path", "", "absolute path of the binary in the image, also the entrypoint (default /<binary's name>)")
	flag.StringVar(&o.caBundle, "ca-bundle", "", "PEM file to install as "+caBundlePath+" (optional)")
	flag.StringVar(&o.user, "user", "", "numeric UID[:GID] the image runs as (default: root, the runtime default)")
	flag.Parse()
	if flag.NArg() > 0 {
		fail(fmt.Errorf("unexpected arguments %q (all inputs are flags)", flag.Args()))
	}
	id, err := run(o)
	if err != nil {
		fail(err)
	}
	fmt.Printf("%s %s\n", o.ref, id)
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "imagepack: %v\n", err)
	os.Exit(1)
}

// run validates the options, builds the image and writes it; it returns the image id.
func run(o options) (string, error) {
	if o.binary == "" || o.ref == "" || o.out == "" {
		return "", errors.New("-binary, -name and -out are required")
	}
	tag, err := name.NewTag(o.ref)
	if err != nil {
		return "", fmt.Errorf("-name %q: %w", o.ref, err)
	}
	if !strings.Contains(o.ref[strings.LastIndex(o.ref, "/")+1:], ":") {
		return "", fmt.Errorf("-name %q: want an explicit tag (repo:tag), so no one gets :latest by accident", o.ref)
	}
	if o.path == "" {
		o.path = "/" + filepath.Base(o.binary)
	}
	if !path.IsAbs(o.path) || path.Clean(o.path) != o.path || o.path == "/" {
		return "", fmt.Errorf("-path %q: want a clean absolute file path such as /agent", o.path)
	}
	if o.user != "" && !userRE.MatchString(o.user) {
		return "", fmt.Errorf("-user %q: want a numeric UID or UID:GID", o.user)
	}
	bin, err := os.ReadFile(o.binary)
	if err != nil {
		return "", fmt.Errorf("read binary: %w", err)
	}
	arch, err := staticELFArch(bin)
	if err != nil {
		return "", fmt.Errorf("binary %s: %w", o.binary, err)
	}
	var ca []byte
	if o.caBundle != "" {
		if ca, err = os.ReadFile(o.caBundle); err != nil {
			return "", fmt.Errorf("read CA bundle: %w", err)
		}
		if !bytes.Contains(ca, []byte("-----BEGIN CERTIFICATE-----")) {
			return "", fmt.Errorf("CA bundle %s holds no PEM certificate", o.caBundle)
		}
	}
	layerTar, err := buildLayer(o.path, bin, ca)
	if err != nil {
		return "", err
	}
	img, err := buildImage(layerTar, arch, o)
	if err != nil {
		return "", err
	}
	id, err := img.ConfigName()
	if err != nil {
		return "", fmt.Errorf("image id: %w", err)
	}
	if err := writeAtomically(o.out, tag, img); err != nil {
		return "", err
	}
	return id.String(), nil
}

// staticELFArch returns the GOARCH-style architecture of a statically linked Linux ELF
// executable, or an error saying why the bytes are not one.
func staticELFArch(bin []byte) (string, error) {
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		return "", fmt.Errorf("not an ELF executable: %w", err)
	}
	defer func() { _ = f.Close() }()
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return "", fmt.Errorf("ELF type %v is not an executable", f.Type)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return "", errors.New("dynamically linked (it has an ELF interpreter): build it with CGO_ENABLED=0")
		}
	}
	switch f.Machine {
	case elf.EM_X86_64:
		return "amd64", nil
	case elf.EM_AARCH64:
		return "arm64", nil
	case elf.EM_386:
		return "386", nil
	case elf.EM_ARM:
		return "arm", nil
	case elf.EM_PPC64:
		return "ppc64le", nil
	case elf.EM_S390:
		return "s390x", nil
	case elf.EM_RISCV:
		return "riscv64", nil
	default:
		return "", fmt.Errorf("ELF machine %v has no known container platform", f.Machine)
	}
}

// buildLayer returns the uncompressed tar of the image's single layer.
func buildLayer(binPath string, bin, ca []byte) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	addDir := func(p string, mode int64) error {
		if dirs[p] {
			return nil
		}
		dirs[p] = true
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: p + "/", Mode: mode, ModTime: epoch, Format: tar.FormatPAX})
	}
	// addParents creates every missing parent directory of p, top down.
	addParents := func(p string) error {
		var parents []string
		for d := path.Dir(p); d != "/"; d = path.Dir(d) {
			parents = append([]string{d[1:]}, parents...)
		}
		for _, d := range parents {
			if err := addDir(d, 0o755); err != nil {
				return err
			}
		}
		return nil
	}
	addFile := func(p string, mode int64, data []byte) error {
		if err := addParents(p); err != nil {
			return err
		}
		h := &tar.Header{Typeflag: tar.TypeReg, Name: p[1:], Mode: mode, Size: int64(len(data)), ModTime: epoch, Format: tar.FormatPAX}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	// /tmp first (sticky, world-writable): a fixed entry, not a parent of anything.
	err := addDir("tmp", 0o1777)
	if err == nil {
		err = addFile("/etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"))
	}
	if err == nil {
		err = addFile("/etc/group", 0o644, []byte("root:x:0:\nnonroot:x:65532:\n"))
	}
	if err == nil && ca != nil {
		err = addFile(caBundlePath, 0o644, ca)
	}
	if err == nil {
		if binPath == "/tmp" || path.Dir(binPath) == "/tmp" || dirs[binPath[1:]] {
			err = fmt.Errorf("-path %s collides with a directory of the image", binPath)
		} else {
			err = addFile(binPath, 0o755, bin)
		}
	}
	if err == nil {
		err = tw.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("build layer: %w", err)
	}
	return buf.Bytes(), nil
}

// buildImage wraps the layer into an image whose config runs binPath as its entrypoint.
func buildImage(layerTar []byte, arch string, o options) (v1.Image, error) {
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	})
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	cfg, err := empty.Image.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("empty config: %w", err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS = "linux"
	cfg.Architecture = arch
	cfg.Created = v1.Time{Time: epoch}
	cfg.Config.Entrypoint = []string{o.path}
	cfg.Config.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin"}
	cfg.Config.WorkingDir = "/"
	cfg.Config.User = o.user
	img, err := mutate.ConfigFile(empty.Image, cfg)
	if err != nil {
		return nil, fmt.Errorf("set config: %w", err)
	}
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:   layer,
		History: v1.History{Created: v1.Time{Time: epoch}, CreatedBy: "imagepack " + o.path},
	})
	if err != nil {
		return nil, fmt.Errorf("append layer: %w", err)
	}
	return img, nil
}

// writeAtomically writes the tarball next to out and renames it into place, so a reader
// never sees half an image.
func writeAtomically(out string, tag name.Tag, img v1.Image) error {
	dir := filepath.Dir(out)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create output directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(out)+".*")
	if err != nil {
		return fmt.Errorf("create output: %w", err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if err := tarball.Write(tag, img, tmp); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write image: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write image: %w", err)
	}
	// CreateTemp makes the file 0600; an image is no secret.
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("write image: %w", err)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return fmt.Errorf("write image: %w", err)
	}
	return nil
}

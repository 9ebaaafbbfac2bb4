#:package SkiaSharp
#:package SkiaSharp.NativeAssets.Linux.NoDependencies
// Renders the glyph corpus of the image demo (see data/README.md): letters A–Z and digits 0–9, white on black,
// 32 × 32 PNG, one class folder per character, from fonts in Debian packages. Deterministic: the same fonts give the
// same bytes. Usage: dotnet run tools/media/render-glyphs.cs -- OUT_DIR
using SkiaSharp;

var output = args.Length > 0 ? args[0] : "glyphs";
const string Characters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

// Pre-training: 20 faces (sans, serif, mono; regular and bold) from four font families.
(string Name, string File)[] baseFonts =
[
    ("dejavu-sans", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
    ("dejavu-sans-bold", "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"),
    ("dejavu-serif", "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf"),
    ("dejavu-serif-bold", "/usr/share/fonts/truetype/dejavu/DejaVuSerif-Bold.ttf"),
    ("dejavu-mono", "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"),
    ("liberation-sans", "/usr/share/fonts/truetype/liberation2/LiberationSans-Regular.ttf"),
    ("liberation-sans-bold", "/usr/share/fonts/truetype/liberation2/LiberationSans-Bold.ttf"),
    ("liberation-serif", "/usr/share/fonts/truetype/liberation2/LiberationSerif-Regular.ttf"),
    ("liberation-serif-bold", "/usr/share/fonts/truetype/liberation2/LiberationSerif-Bold.ttf"),
    ("liberation-mono", "/usr/share/fonts/truetype/liberation2/LiberationMono-Regular.ttf"),
    ("free-sans", "/usr/share/fonts/truetype/freefont/FreeSans.ttf"),
    ("free-serif", "/usr/share/fonts/truetype/freefont/FreeSerif.ttf"),
    ("free-mono", "/usr/share/fonts/truetype/freefont/FreeMono.ttf"),
    ("free-sans-bold", "/usr/share/fonts/truetype/freefont/FreeSansBold.ttf"),
    ("nimbus-sans", "/usr/share/fonts/opentype/urw-base35/NimbusSans-Regular.otf"),
    ("nimbus-roman", "/usr/share/fonts/opentype/urw-base35/NimbusRoman-Regular.otf"),
    ("nimbus-mono", "/usr/share/fonts/opentype/urw-base35/NimbusMonoPS-Regular.otf"),
    ("urw-bookman", "/usr/share/fonts/opentype/urw-base35/URWBookman-Light.otf"),
    ("urw-gothic", "/usr/share/fonts/opentype/urw-base35/URWGothic-Book.otf"),
    ("c059", "/usr/share/fonts/opentype/urw-base35/C059-Roman.otf"),
];

// Fine-tuning: a calligraphic face the base never saw (URW's Z003, a Zapf Chancery design).
(string Name, string File)[] newFonts = [("z003", "/usr/share/fonts/opentype/urw-base35/Z003-MediumItalic.otf")];

// Variants: (text size, dx, dy, rotation in degrees).
(float Size, float Dx, float Dy, float Degrees)[] baseVariants = [(26, 0, 0, 0), (22, 1, -1, -5)];
(float Size, float Dx, float Dy, float Degrees)[] newVariants = [(26, 0, 0, 0), (22, 1, -1, -5), (24, -1, 1, 5), (28, 0, 1, 0), (23, 1, 0, 3)];

Render(Path.Combine(output, "base"), baseFonts, baseVariants);
Render(Path.Combine(output, "new"), newFonts, newVariants);

void Render(string directory, (string Name, string File)[] fonts, (float Size, float Dx, float Dy, float Degrees)[] variants)
{
    foreach (var (name, file) in fonts)
    {
        using var typeface = SKTypeface.FromFile(file) ?? throw new FileNotFoundException($"{file} is missing: apt-get install fonts-dejavu-core fonts-liberation2 fonts-freefont-ttf fonts-urw-base35");
        foreach (var c in Characters)
        {
            Directory.CreateDirectory(Path.Combine(directory, c.ToString()));
            for (var v = 0; v < variants.Length; v++)
            {
                var (size, dx, dy, degrees) = variants[v];
                using var bitmap = new SKBitmap(new SKImageInfo(32, 32, SKColorType.Gray8, SKAlphaType.Opaque));
                using (var canvas = new SKCanvas(bitmap))
                using (var font = new SKFont(typeface, size))
                using (var paint = new SKPaint { Color = SKColors.White, IsAntialias = true })
                {
                    canvas.Clear(SKColors.Black);
                    var text = c.ToString();
                    font.MeasureText(text, out var bounds);
                    canvas.Translate(16 + dx, 16 + dy);
                    canvas.RotateDegrees(degrees);
                    canvas.DrawText(text, -bounds.MidX, -bounds.MidY, font, paint);
                }

                using var png = bitmap.Encode(SKEncodedImageFormat.Png, 100);
                File.WriteAllBytes(Path.Combine(directory, c.ToString(), $"{name}-{v}.png"), png.ToArray());
            }
        }
    }
}

Console.WriteLine($"glyphs written to {output}/base and {output}/new");

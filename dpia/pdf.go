package dpia

import (
	"fmt"
	"io"

	"github.com/go-pdf/fpdf"
)

// PDF writes the report as an A4 PDF (pure Go, go-pdf/fpdf). Tables are
// laid out as one block per row ("column: value" lines) so that no cell is
// truncated, however long. Text uses the PDF core fonts, whose encoding is
// Windows-1252: characters outside it (rare in this report: organisation
// names) are replaced, which the JSON form never does.
func (r *Report) PDF(w io.Writer) error {
	pdf := fpdf.New("P", "mm", "A4", "")
	pdf.SetTitle(r.title(), true)
	pdf.SetCreator("Herald", true)
	pdf.SetCreationDate(r.GeneratedAt)
	pdf.SetModificationDate(r.GeneratedAt)
	pdf.SetMargins(15, 15, 15)
	pdf.SetAutoPageBreak(true, 15)
	tr := pdf.UnicodeTranslatorFromDescriptor("")
	pdf.SetFooterFunc(func() {
		pdf.SetY(-10)
		pdf.SetFont("Helvetica", "", 7)
		pdf.CellFormat(0, 4, tr(fmt.Sprintf("Herald DPIA %s - report hash %s - page %d", r.Org.Name, r.Hash, pdf.PageNo())), "", 0, "C", false, 0, "")
	})
	pdf.AddPage()
	pdf.SetFont("Helvetica", "B", 16)
	pdf.MultiCell(0, 8, tr(r.title()), "", "L", false)
	pdf.SetFont("Helvetica", "", 9)
	pdf.MultiCell(0, 5, tr(r.subtitle()), "", "L", false)
	pdf.Ln(3)
	for _, s := range r.document() {
		pdf.SetFont("Helvetica", "B", 13)
		pdf.MultiCell(0, 7, tr(s.title), "", "L", false)
		pdf.Ln(1)
		for _, b := range s.blocks {
			if b.heading != "" {
				pdf.SetFont("Helvetica", "B", 10.5)
				pdf.MultiCell(0, 6, tr(b.heading), "", "L", false)
			}
			pdf.SetFont("Helvetica", "", 9)
			if b.text != "" {
				pdf.MultiCell(0, 4.5, tr(b.text), "", "L", false)
				pdf.Ln(1.5)
			}
			for _, x := range b.bullets {
				pdf.MultiCell(0, 4.5, tr("- "+x), "", "L", false)
			}
			if t := b.table; t != nil {
				for _, row := range t.rows {
					pdf.SetFont("Helvetica", "B", 9)
					pdf.MultiCell(0, 4.5, tr(row[0]), "T", "L", false)
					pdf.SetFont("Helvetica", "", 8.5)
					for i := 1; i < len(row) && i < len(t.head); i++ {
						pdf.SetX(20)
						pdf.MultiCell(0, 4.2, tr(t.head[i]+": "+row[i]), "", "L", false)
					}
					pdf.Ln(1)
				}
			}
			pdf.Ln(1.5)
		}
	}
	if err := pdf.Error(); err != nil {
		return fmt.Errorf("dpia: render PDF: %w", err)
	}
	return pdf.Output(w)
}

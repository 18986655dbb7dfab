"""Report files (PDF with reportlab, XLSX with openpyxl): they lay out figures assembled by the services."""

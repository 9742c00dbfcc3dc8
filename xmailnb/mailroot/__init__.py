"""The MailRoot: where XMail keeps its files, server.tab, the store (the one
writer), the workbook's own settings and the practice sandbox."""

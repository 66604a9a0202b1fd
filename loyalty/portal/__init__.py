"""The member portal: server-rendered pages a brand's customers use, embeddable in an iframe."""
